import { type Context, context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AccessTokenVerifier } from '../auth/access-token.verifier.js';
import { withRequestScope } from '../context/request-context.js';
import { redactUrl } from '../logging/logger.js';
import { RequestLog } from '../logging/request-log.js';
import type { Metrics } from '../metrics/metrics.js';
import { LINKED_ROOT_CONTEXT } from '../tracing/linked-context.js';
import type { Tracing } from '../tracing/tracing.js';
import { extractTraceContext } from '../tracing/w3c.js';
import { type Authenticated, authenticate } from './auth.hook.js';
import { routeInfo } from './route-info.js';

const kSpan = Symbol('ferry.span');
const kStarted = Symbol('ferry.started');

interface Scoped {
  [kSpan]?: Span | undefined;
  [kStarted]?: number;
}

/** Options of {@link observeRequests}. */
export interface ObservabilityOptions {
  readonly tracing: Tracing;
  readonly metrics: Metrics | undefined;
  readonly logger: Logger;
  /** One JSON line per request, written by a {@link RequestLog} of `logger`. */
  readonly requestLogging: boolean;
  /** Checks bearer tokens; `undefined` with AUTH_MODE=none. */
  readonly verifier: AccessTokenVerifier | undefined;
}

const pathOf = (url: string) => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

/** The correlation id header: read from callers, set on every response. */
export const CORRELATION_HEADER = 'x-correlation-id';

/**
 * The per-request pipeline, registered first: a server span continuing the caller's W3C trace,
 * the correlation id (from `x-correlation-id` or new) in the request scope, RED metrics by
 * route, and one log line per request with status, duration, trace and correlation ids.
 */
export function observeRequests(app: FastifyInstance, options: ObservabilityOptions): void {
  const { tracing, metrics, logger } = options;
  const requestLog = options.requestLogging ? new RequestLog(logger) : undefined;
  const requests = metrics?.counter('http_requests_total', 'HTTP requests answered', [
    'method',
    'route',
    'status_code',
  ]);
  const duration = metrics?.histogram('http_request_duration_seconds', 'HTTP request duration', [
    'method',
    'route',
    'status_code',
  ]);
  // Label children by route, method and status in nested maps: the route template and the
  // method are the same string objects on every request (their hashes cached), so a request
  // costs three map lookups, not a label hash or a key string.
  type Child = { count: () => void; observe: (seconds: number) => void };
  const children = new Map<string, Map<string, Map<number, Child>>>();
  let childCount = 0;
  const record = (method: string, route: string, status: number, seconds: number) => {
    if (!requests || !duration) return;
    let byMethod = children.get(route);
    if (!byMethod) {
      byMethod = new Map();
      children.set(route, byMethod);
    }
    let byStatus = byMethod.get(method);
    if (!byStatus) {
      byStatus = new Map();
      byMethod.set(method, byStatus);
    }
    let child = byStatus.get(status);
    if (!child) {
      const labels = { method, route, status_code: status };
      const counter = requests.labels(labels);
      const histogram = duration.labels(labels);
      child = { count: () => counter.inc(), observe: (s) => histogram.observe(s) };
      if (childCount++ < 10_000) byStatus.set(status, child);
    }
    child.count();
    child.observe(seconds);
  };

  // One onRequest hook for the span, the correlation id, the token check and the request scope:
  // every hook Fastify runs costs a call chain, and this path runs for every request.
  app.addHook('onRequest', (request: FastifyRequest & Scoped, reply, done) => {
    const route = routeInfo(request).url;
    request[kStarted] = performance.now();
    reply.header(CORRELATION_HEADER, request.id);
    const headers = request.headers;
    const parent =
      headers.traceparent === undefined
        ? LINKED_ROOT_CONTEXT
        : extractTraceContext(headers, LINKED_ROOT_CONTEXT);
    const span = tracing.startSpan(
      `${request.method} ${route}`,
      SpanKind.SERVER,
      { 'http.request.method': request.method, 'http.route': route, 'url.path': pathOf(request.url) },
      parent,
    );
    request[kSpan] = span;
    const traced = span ? trace.setSpan(parent, span) : parent;
    // The token is checked before the request scope is made, so that one context holds the
    // correlation id and the caller. Fastify parses bodies in an AsyncResource of the request,
    // so the context entered here reaches the handler of a request with a body too. (No closures
    // on the common path: under tsx each one costs a property definition per request.)
    let authenticated: Authenticated | Promise<Authenticated> | undefined;
    try {
      authenticated = authenticate(request, reply, options.verifier);
    } catch (error) {
      return context.with(requestScope(request, traced), () => done(error as Error));
    }
    if (!(authenticated instanceof Promise))
      return context.with(requestScope(request, traced, authenticated), done);
    authenticated.then(
      (caller) => context.with(requestScope(request, traced, caller), done),
      (error: Error) => context.with(requestScope(request, traced), () => done(error)),
    );
  });

  app.addHook('onResponse', (request: FastifyRequest & Scoped, reply: FastifyReply, done) => {
    const status = reply.statusCode;
    const route = routeInfo(request).url;
    const seconds = (performance.now() - (request[kStarted] ?? performance.now())) / 1000;
    record(request.method, route, status, seconds);
    const span = request[kSpan];
    if (span) {
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    if (requestLog) {
      const ids = span?.spanContext();
      requestLog.write({
        method: request.method,
        url: redactUrl(request.url),
        route,
        status,
        durationMs: Math.round(seconds * 1e6) / 1e3,
        correlationId: request.id,
        traceId: ids?.traceId,
        spanId: ids?.spanId,
        principal: request.principal?.subject,
      });
    }
    done();
  });
}

/** The request's context: its trace, its correlation id and, once the token is checked, its caller. */
function requestScope(request: FastifyRequest, traced: Context, caller?: Authenticated): Context {
  return withRequestScope(
    { correlationId: request.id, principal: caller?.principal, accessToken: caller?.token },
    traced,
  );
}
