import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BrokenCircuitError, BulkheadRejectedError, TaskCancelledError } from 'cockatiel';
import type { Logger } from 'pino';
import { Agent, type Dispatcher, request as undiciRequest } from 'undici';
import { currentAccessToken, currentCorrelationId } from '../context/request-context.js';
import { RoundRobinBalancer } from '../discovery/load-balancer.js';
import type { ServiceDiscovery } from '../discovery/service-discovery.js';
import type { Metrics } from '../metrics/metrics.js';
import {
  type ResilienceOptions,
  type ResiliencePolicies,
  resiliencePolicies,
} from '../resilience/resilience.policy.js';
import type { Tracing } from '../tracing/tracing.js';
import { injectTraceContext } from '../tracing/w3c.js';
import { UpstreamError } from './upstream.error.js';

/** Options of {@link HttpClient}. */
export interface HttpClientOptions extends ResilienceOptions {
  /** A service name, resolved through `discovery`, or an absolute base URL. */
  readonly target: string;
  readonly discovery?: ServiceDiscovery | undefined;
  readonly tracing?: Tracing | undefined;
  readonly metrics?: Metrics | undefined;
  readonly logger?: Logger | undefined;
  /** Send the current request's bearer token along (default true). */
  readonly forwardAccessToken?: boolean | undefined;
  /** Headers sent with every call. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** One call. */
export interface HttpCall {
  readonly method: Dispatcher.HttpMethod;
  /** Path and query, e.g. `/orders/42?full=true`. */
  readonly path: string;
  /** Sent as JSON. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /**
   * May the call be repeated? Default: true for GET, HEAD, OPTIONS, PUT and DELETE. A POST with
   * an idempotency key may say true.
   */
  readonly idempotent?: boolean | undefined;
}

/** The answer to a call that reached the target and was not a 5xx. */
export interface HttpResponse<T = unknown> {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Parsed JSON when the answer was JSON, else the text. */
  readonly body: T;
}

/** A 5xx or 429 answer: counted against the breaker and retried when the call is idempotent. */
export class RetryableStatusError extends Error {
  override readonly name = 'RetryableStatusError';

  constructor(readonly response: HttpResponse) {
    super(`answered ${response.status}`);
  }
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
const NETWORK =
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|UND_ERR_SOCKET|UND_ERR_CONNECT|UND_ERR_CLOSED|UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT/;

/** Errors that mean "the target failed", as opposed to an answer. */
export function isTransientHttpFailure(error: Error): boolean {
  if (error instanceof RetryableStatusError || error instanceof TaskCancelledError) return true;
  const code = (error as { code?: string }).code ?? '';
  return NETWORK.test(code) || NETWORK.test(error.message);
}

/**
 * A resilient HTTP client (undici) for one target: a timeout per attempt, retries with backoff
 * for idempotent calls only, a circuit breaker and a bulkhead (cockatiel), client-side load
 * balancing over discovered instances, and the trace context, correlation id and caller's token
 * sent along. 2xx-4xx answers are returned; a 5xx, a timeout or a network failure that the
 * policies could not overcome throws {@link UpstreamError}; an open breaker throws
 * `BrokenCircuitError`, a full bulkhead `BulkheadRejectedError` (both answered with 503 by the runtime).
 */
export class HttpClient {
  readonly #policies: ResiliencePolicies;
  readonly #balancer: RoundRobinBalancer | undefined;
  readonly #agent = new Agent({ keepAliveTimeout: 10_000, connections: 128 });

  constructor(private readonly options: HttpClientOptions) {
    this.#policies = resiliencePolicies(options.target, options, isTransientHttpFailure, options);
    this.#balancer = /^https?:\/\//.test(options.target)
      ? undefined
      : new RoundRobinBalancer(
          options.discovery ??
            (() => {
              throw new Error(`HttpClient for ${options.target}: a service name needs discovery`);
            })(),
        );
  }

  /** The breaker, for tests and dashboards. */
  get breaker() {
    return this.#policies.breaker;
  }

  get<T = unknown>(path: string, headers?: Record<string, string>): Promise<HttpResponse<T>> {
    return this.request<T>({ method: 'GET', path, headers });
  }

  post<T = unknown>(path: string, body: unknown, options: Partial<HttpCall> = {}): Promise<HttpResponse<T>> {
    return this.request<T>({ ...options, method: 'POST', path, body });
  }

  put<T = unknown>(path: string, body: unknown, options: Partial<HttpCall> = {}): Promise<HttpResponse<T>> {
    return this.request<T>({ ...options, method: 'PUT', path, body });
  }

  delete<T = unknown>(path: string, options: Partial<HttpCall> = {}): Promise<HttpResponse<T>> {
    return this.request<T>({ ...options, method: 'DELETE', path });
  }

  /** Makes a call through the policies. */
  async request<T = unknown>(call: HttpCall): Promise<HttpResponse<T>> {
    const idempotent = call.idempotent ?? IDEMPOTENT.has(call.method);
    const policy = idempotent ? this.#policies.idempotent : this.#policies.once;
    try {
      return (await policy.execute(({ signal }) => this.#attempt(call, signal))) as HttpResponse<T>;
    } catch (error) {
      if (error instanceof BrokenCircuitError || error instanceof BulkheadRejectedError) throw error;
      if (error instanceof RetryableStatusError)
        throw new UpstreamError(this.options.target, error.message, error.response.status, { cause: error });
      if (error instanceof TaskCancelledError)
        throw new UpstreamError(
          this.options.target,
          `timed out after ${this.options.timeoutMs ?? 5_000} ms`,
          undefined,
          { cause: error },
        );
      if (isTransientHttpFailure(error as Error))
        throw new UpstreamError(this.options.target, (error as Error).message, undefined, { cause: error });
      throw error;
    }
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #attempt(call: HttpCall, signal: AbortSignal): Promise<HttpResponse> {
    const base = this.#balancer
      ? (await this.#balancer.choose(this.options.target)).url
      : this.options.target;
    const url = new URL(call.path, base.endsWith('/') ? base : `${base}/`);
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...this.options.headers,
      ...call.headers,
    };
    Object.assign(headers, injectTraceContext());
    const correlationId = currentCorrelationId();
    if (correlationId) headers['x-correlation-id'] = correlationId;
    const token = this.options.forwardAccessToken === false ? undefined : currentAccessToken();
    if (token && !headers.authorization) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers['content-type'] = 'application/json';
    }
    const tracing = this.options.tracing;
    const span = tracing?.startSpan(
      `${call.method}`,
      SpanKind.CLIENT,
      { 'http.request.method': call.method, 'url.full': url.toString(), 'server.address': url.hostname },
      context.active(),
    );
    if (span) Object.assign(headers, injectTraceContext(tracing!.withSpan(span)));
    try {
      const res = await undiciRequest(url, {
        method: call.method,
        headers,
        body,
        signal,
        dispatcher: this.#agent,
      });
      const text = await res.body.text();
      const type = String(res.headers['content-type'] ?? '');
      const parsed = type.includes('json') && text.length > 0 ? JSON.parse(text) : text;
      const response: HttpResponse = { status: res.statusCode, headers: res.headers, body: parsed };
      span?.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500 || res.statusCode === 429) {
        span?.setStatus({ code: SpanStatusCode.ERROR });
        throw new RetryableStatusError(response);
      }
      return response;
    } catch (error) {
      span?.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span?.end();
    }
  }
}
