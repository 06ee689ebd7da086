import { randomUUID } from 'node:crypto';
import fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { AccessTokenVerifier } from '../auth/access-token.verifier.js';
import type { BaseSettings } from '../config/base.settings.js';
import type { ExceptionTracker } from '../exceptions/exception.tracker.js';
import { frameworkErrors, installErrorHandling } from '../http/error-handler.js';
import { observeRequests } from '../http/observability.hooks.js';
import { registerOpenApi } from '../http/openapi.plugin.js';
import { zodSerializerCompiler, zodValidatorCompiler } from '../http/route.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Tracing } from '../tracing/tracing.js';

const CORRELATION_ID = /^[\w.:@-]{1,128}$/;

/** What the Fastify app of a service is built with. */
export interface ServiceAppDeps {
  readonly name: string;
  readonly version?: string | undefined;
  readonly description?: string | undefined;
  readonly logger: Logger;
  readonly requestLogger: Logger;
  readonly tracing: Tracing;
  readonly metrics: Metrics;
  readonly exceptions: ExceptionTracker;
  readonly verifier: AccessTokenVerifier | undefined;
}

/**
 * The service's Fastify app before its routes: zod compilers, the request pipeline (span,
 * correlation id, token check, metrics, request log), problem+json errors and OpenAPI.
 */
export async function createServiceApp(
  settings: BaseSettings,
  deps: ServiceAppDeps,
): Promise<FastifyInstance> {
  const { name, logger, requestLogger, tracing, metrics, exceptions, verifier } = deps;
  const app = fastify({
    loggerInstance: logger,
    // `request.log` is the service logger itself: the mixin adds trace and correlation ids from
    // the request's context, so a child logger per request would only cost time.
    childLoggerFactory: (parent) => parent,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'correlation_id' }),
    genReqId: (req) => {
      const given = req.headers['x-correlation-id'];
      return typeof given === 'string' && CORRELATION_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: settings.BODY_LIMIT_BYTES,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    frameworkErrors,
  }) as unknown as FastifyInstance;
  app.decorateRequest('principal', undefined);
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(zodSerializerCompiler);
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...route.config, auth: 'public' };
  });
  observeRequests(app, {
    tracing,
    metrics: settings.METRICS_ENABLED ? metrics : undefined,
    logger: requestLogger,
    requestLogging: settings.REQUEST_LOGGING_ENABLED,
    verifier,
  });
  installErrorHandling(app, logger, settings.EXCEPTION_TRACKING_ENABLED ? exceptions : undefined);
  if (settings.OPENAPI_DOCS_ENABLED)
    await registerOpenApi(app, {
      title: name,
      version: deps.version ?? '0.0.0',
      description: deps.description,
    });

  return app;
}
