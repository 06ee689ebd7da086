import * as grpc from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BrokenCircuitError, BulkheadRejectedError, TaskCancelledError } from 'cockatiel';
import type { Logger } from 'pino';
import { currentAccessToken, currentCorrelationId } from '../context/request-context.js';
import type { Metrics } from '../metrics/metrics.js';
import {
  type ResilienceOptions,
  type ResiliencePolicies,
  resiliencePolicies,
} from '../resilience/resilience.policy.js';
import type { Tracing } from '../tracing/tracing.js';
import { injectTraceContext } from '../tracing/w3c.js';
import { UpstreamError } from './upstream.error.js';

/** Options of {@link GrpcClient}. */
export interface GrpcClientOptions extends ResilienceOptions {
  /** Name used in metrics and logs, e.g. `order-service`. */
  readonly target: string;
  /** `host:port` (a Kubernetes Service name works: server-side discovery), or a resolver called per attempt. */
  readonly address: string | (() => Promise<string>);
  /** The generated client constructor (`loadPackageDefinition(...).pkg.Service`). */
  readonly service: grpc.ServiceClientConstructor;
  readonly credentials?: grpc.ChannelCredentials | undefined;
  readonly tracing?: Tracing | undefined;
  readonly metrics?: Metrics | undefined;
  readonly logger?: Logger | undefined;
  /** Send the current request's bearer token as `authorization` metadata (default true). */
  readonly forwardAccessToken?: boolean | undefined;
}

const TRANSIENT = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
]);

/** gRPC failures that count against the breaker and are retried for idempotent calls. */
export function isTransientGrpcFailure(error: Error): boolean {
  if (error instanceof TaskCancelledError) return true;
  const code = (error as Partial<grpc.ServiceError>).code;
  return code !== undefined && TRANSIENT.has(code);
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;

/**
 * A resilient gRPC client (@grpc/grpc-js): a deadline per attempt, retries with backoff for
 * idempotent calls only, a circuit breaker and a bulkhead, and W3C trace context, correlation id
 * and the caller's token in the metadata. Answers such as NOT_FOUND pass through as they are;
 * transient failures the policies could not overcome throw {@link UpstreamError}.
 */
export class GrpcClient {
  readonly #policies: ResiliencePolicies;
  readonly #clients = new Map<string, grpc.Client>();

  constructor(private readonly options: GrpcClientOptions) {
    this.#policies = resiliencePolicies(
      options.target,
      { ...options, timeoutMs: (options.timeoutMs ?? 5_000) + 250 },
      isTransientGrpcFailure,
      options,
    );
  }

  get breaker() {
    return this.#policies.breaker;
  }

  /** Calls a unary method; `idempotent` allows retries (default false). */
  async unary<Res, Req = unknown>(
    method: string,
    request: Req,
    options: { readonly idempotent?: boolean; readonly metadata?: Readonly<Record<string, string>> } = {},
  ): Promise<Res> {
    const policy = options.idempotent ? this.#policies.idempotent : this.#policies.once;
    try {
      return (await policy.execute(({ signal }) =>
        this.#attempt(method, request, options.metadata ?? {}, signal),
      )) as Res;
    } catch (error) {
      if (error instanceof BrokenCircuitError || error instanceof BulkheadRejectedError) throw error;
      if (isTransientGrpcFailure(error as Error))
        throw new UpstreamError(
          this.options.target,
          `${method} failed: ${(error as Error).message}`,
          undefined,
          { cause: error },
        );
      throw error;
    }
  }

  /** Closes the channels. */
  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  async #client(): Promise<grpc.Client> {
    const address =
      typeof this.options.address === 'string' ? this.options.address : await this.options.address();
    let client = this.#clients.get(address);
    if (!client) {
      client = new this.options.service(
        address,
        this.options.credentials ?? grpc.credentials.createInsecure(),
      );
      this.#clients.set(address, client);
    }
    return client;
  }

  async #attempt(
    method: string,
    request: unknown,
    extra: Readonly<Record<string, string>>,
    signal: AbortSignal,
  ): Promise<unknown> {
    const client = await this.#client();
    const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
    if (typeof fn !== 'function') throw new Error(`${this.options.target} has no method ${method}`);
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
    const correlationId = currentCorrelationId();
    if (correlationId) metadata.set('x-correlation-id', correlationId);
    const token = this.options.forwardAccessToken === false ? undefined : currentAccessToken();
    if (token && !extra.authorization) metadata.set('authorization', `Bearer ${token}`);
    const tracing = this.options.tracing;
    const span = tracing?.startSpan(
      `${this.options.target}/${method}`,
      SpanKind.CLIENT,
      { 'rpc.system': 'grpc', 'rpc.method': method },
      context.active(),
    );
    const trace = injectTraceContext(span ? tracing!.withSpan(span) : context.active());
    for (const [key, value] of Object.entries(trace)) metadata.set(key, value);
    try {
      return await new Promise((resolve, reject) => {
        const call = fn.call(
          client,
          request,
          metadata,
          { deadline: Date.now() + (this.options.timeoutMs ?? 5_000) },
          (error, response) => (error ? reject(error) : resolve(response)),
        );
        signal.addEventListener('abort', () => call.cancel(), { once: true });
      });
    } catch (error) {
      span?.setAttribute('rpc.grpc.status_code', (error as grpc.ServiceError).code ?? -1);
      span?.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span?.end();
    }
  }
}
