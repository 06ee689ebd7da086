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
const kStarted = Symbol('ferry.started');
const kScope = Symbol('ferry.scope');

interface Scoped {
  [kSpan]?: Span | undefined;
  [kStarted]?: number;
  [kScope]?: AsyncResource;
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

  app.addHook('onRequest', (request: FastifyRequest & Scoped, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
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
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = (performance.now() - (request[kStarted] ?? performance.now())) / 1000;
    const labels = { method: request.method, route, status_code: status };
    requests?.inc(labels);
    duration?.observe(labels, seconds);
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
    request[kScope] = new AsyncResource('ferry.request');
    done();
  });
  app.addHook('preValidation', (request: FastifyRequest & Scoped, _reply, done) => {
    const scope = request[kScope];
    if (scope) scope.runInAsyncScope(done);
    else done();
  });
}
