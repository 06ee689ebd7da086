import { AsyncResource } from 'node:async_hooks';
import { context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { withRequestScope } from '../context/request-context.js';
import { redactUrl } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Tracing } from '../tracing/tracing.js';
import { extractTraceContext } from '../tracing/w3c.js';

const kSpan = Symbol('ferry.span');
const kRoute = Symbol('ferry.route');
const kStarted = Symbol('ferry.started');
const kScope = Symbol('ferry.scope');

interface Scoped {
  [kRoute]?: RouteInfo;
  [kSpan]?: Span | undefined;
  [kStarted]?: number;
  [kScope]?: AsyncResource;
}

/** What the hooks need from a request's route, read once per request. */
export interface RouteInfo {
  /** The route template, `unmatched` for 404s. */
  readonly url: string;
  readonly config: FastifyRequest['routeOptions']['config'];
}

/** The request's route template and config (Fastify builds `routeOptions` anew on each read). */
export function routeInfo(request: FastifyRequest): RouteInfo {
  const scoped = request as FastifyRequest & Scoped;
  let info = scoped[kRoute];
  if (!info) {
    const options = request.routeOptions;
    info = { url: options.url ?? 'unmatched', config: options.config };
    scoped[kRoute] = info;
  }
  return info;
}

/** Options of {@link observeRequests}. */
export interface ObservabilityOptions {
  readonly tracing: Tracing;
  readonly metrics: Metrics | undefined;
  readonly logger: Logger;
  /** One JSON line per request. */
  readonly requestLogging: boolean;
}

/** The correlation id header: read from callers, set on every response. */
export const CORRELATION_HEADER = 'x-correlation-id';

/**
 * Per-request observability, registered first: a server span continuing the caller's W3C trace,
 * the correlation id (from `x-correlation-id` or new) in the request scope, RED metrics by
 * route, and one log line per request with status, duration, trace and correlation ids.
 */
export function observeRequests(app: FastifyInstance, options: ObservabilityOptions): void {
  const { tracing, metrics, logger } = options;
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
  // Label children by method, route and status, so a request costs a map lookup, not a label hash.
  const children = new Map<string, { count: () => void; observe: (seconds: number) => void }>();
  const record = (method: string, route: string, status: number, seconds: number) => {
    if (!requests || !duration) return;
    const key = `${method} ${status} ${route}`;
    let child = children.get(key);
    if (!child) {
      const labels = { method, route, status_code: status };
      const counter = requests.labels(labels);
      const histogram = duration.labels(labels);
      child = { count: () => counter.inc(), observe: (s) => histogram.observe(s) };
      if (children.size < 10_000) children.set(key, child);
    }
    child.count();
    child.observe(seconds);
  };

  app.addHook('onRequest', (request: FastifyRequest & Scoped, reply, done) => {
    const route = routeInfo(request).url;
    request[kStarted] = performance.now();
    reply.header(CORRELATION_HEADER, request.id);
    const parent = extractTraceContext(request.headers, ROOT_CONTEXT);
    const span = tracing.startSpan(
      `${request.method} ${route}`,
      SpanKind.SERVER,
      { 'http.request.method': request.method, 'http.route': route, 'url.path': request.url.split('?')[0] },
      parent,
    );
    request[kSpan] = span;
    const active = withRequestScope(
      { correlationId: request.id },
      span ? trace.setSpan(parent, span) : parent,
    );
    context.with(active, done);
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
    if (options.requestLogging) {
      const ids = span?.spanContext();
      logger.info(
        {
          method: request.method,
          url: redactUrl(request.url),
          route,
          status,
          duration_ms: Math.round(seconds * 1e6) / 1e3,
          correlation_id: request.id,
          ...(ids ? { trace_id: ids.traceId, span_id: ids.spanId } : {}),
          ...(request.principal ? { principal: request.principal.subject } : {}),
        },
        'request',
      );
    }
    done();
  });
}

/**
 * Keeps the request's context (span, principal, correlation id) across body parsing, where
 * Node's stream callbacks would otherwise lose it: captured after the onRequest hooks, entered
 * again before validation. Register after every onRequest hook that changes the context.
 */
export function keepRequestContext(app: FastifyInstance): void {
  app.addHook('onRequest', (request: FastifyRequest & Scoped, _reply, done) => {
    // Without a body the handler runs on from these hooks and keeps the context anyway.
    const headers = request.headers;
    if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined)
      request[kScope] = new AsyncResource('ferry.request');
    done();
  });
  app.addHook('preValidation', (request: FastifyRequest & Scoped, _reply, done) => {
    const scope = request[kScope];
    if (scope) scope.runInAsyncScope(done);
    else done();
  });
}
