import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import { z } from 'zod';
import { AuditLog } from '../audit/audit-log.js';
import { AccessTokenVerifier } from '../auth/access-token.verifier.js';
import { HttpClient } from '../clients/http-client.js';
import { type BaseSettings, baseSettings, checkBaseSettings } from '../config/base.settings.js';
import { type ConfigLayers, mergeLayers } from '../config/config.loader.js';
import { ConfigServiceSource } from '../config/config-service.source.js';
import { LiveConfig } from '../config/live-config.js';
import { createDiscovery } from '../discovery/discovery.factory.js';
import { type ExceptionStore, MemoryExceptionStore } from '../exceptions/exception.store.js';
import { PostgresExceptionStore } from '../exceptions/exception.store.postgres.js';
import { ExceptionTracker } from '../exceptions/exception.tracker.js';
import { SentryForwarder } from '../exceptions/sentry.forwarder.js';
import { type HealthCheck, postgresCheck } from '../health/health-check.js';
import { registerBuiltinRoutes } from '../http/builtin.routes.js';
import { registerRoutes, type ZodTypeProvider } from '../http/route.js';
import { createLogger, createRequestLogger } from '../logging/logger.js';
import { Metrics } from '../metrics/metrics.js';
import { Tracing } from '../tracing/tracing.js';
import { buildConsumer } from './consumers.js';
import { Service } from './service.js';
import { createServiceApp } from './service-app.js';
import type { Provided, ServiceContext, ServiceDeclaration, Settings } from './service-declaration.js';

async function provide<T, S extends z.ZodRawShape>(
  value: Provided<T, S> | undefined,
  ctx: ServiceContext<S>,
  fallback: T,
): Promise<T> {
  if (value === undefined) return fallback;
  return typeof value === 'function' ? (value as (c: ServiceContext<S>) => T | Promise<T>)(ctx) : value;
}

function settingsSchema(own: z.ZodObject | undefined): z.ZodObject {
  const clash = Object.keys(own?.shape ?? {}).filter((name) => name in baseSettings.shape);
  if (clash.length > 0) throw new Error(`service settings clash with the chassis's: ${clash.join(', ')}`);
  return z
    .object({ ...baseSettings.shape, ...own?.shape })
    .superRefine((value, ctx) =>
      checkBaseSettings(value as BaseSettings, (path, message) =>
        ctx.addIssue({ code: 'custom', path: [path], message }),
      ),
    );
}

async function loadSettings(
  schema: z.ZodObject,
  layers: ConfigLayers,
): Promise<{ config: LiveConfig<Record<string, unknown>>; source: ConfigServiceSource | undefined }> {
  const raw = mergeLayers(Object.keys(schema.shape), layers);
  if (!raw.CONFIG_URL) return { config: new LiveConfig(schema, layers), source: undefined };
  const url = z.url().safeParse(raw.CONFIG_URL);
  if (!url.success) return { config: new LiveConfig(schema, layers), source: undefined };
  const source = new ConfigServiceSource(url.data);
  const remote = await source.fetch();
  return { config: new LiveConfig(schema, { ...layers, remote }), source };
}

/**
 * Builds a service from its declaration: validates the configuration (a bad or missing setting
 * throws `ConfigError` naming it), then wires logging, tracing, metrics, health, problem+json
 * errors, access tokens, OpenAPI, exception tracking, the audit log and discovery around the
 * declared routes, components and message consumers. Call `start()` to run it.
 * @example
 * const service = await createService({
 *   name: 'kitchen-service',
 *   config: z.object({ TICKET_LIMIT: z.coerce.number().default(100) }),
 *   routes: (ctx) => [acceptTicketRoute(ctx)],
 *   consumers: (ctx) => [{ group: 'kitchen-service', broker, inbox, deadLetters, handlers: [handle(CreateTicket, createTicket)] }],
 * });
 * await service.start();
 */
export async function createService<S extends z.ZodRawShape = Record<never, never>>(
  declaration: ServiceDeclaration<S>,
): Promise<Service<S>> {
  const schema = settingsSchema(declaration.config as z.ZodObject | undefined);
  const { config, source } = await loadSettings(schema, declaration.configLayers ?? {});
  const live = config as unknown as LiveConfig<Settings<S>>;
  const settings = live.current;
  const name = declaration.name;
  const instanceId =
    settings.SERVICE_INSTANCE_ID ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const logOptions = {
    service: name,
    instance: instanceId,
    level: settings.LOG_LEVEL,
    destination: declaration.logDestination,
  };
  const logger = createLogger(logOptions);
  const requestLogger = createRequestLogger(logOptions);
  live.onChange((next) => {
    logger.level = next.LOG_LEVEL;
    requestLogger.level = next.LOG_LEVEL;
  });
  const tracing = new Tracing({
    service: name,
    instance: instanceId,
    version: declaration.version,
    enabled: settings.TRACING_ENABLED,
    sampleRatio: settings.OTEL_TRACES_SAMPLER_ARG,
    otlpEndpoint: settings.OTEL_EXPORTER_OTLP_ENDPOINT,
    exporter: declaration.spanExporter,
  });
  const metrics = new Metrics({ service: name });
  const ownsPool = !declaration.database && settings.DATABASE_URL !== undefined;
  const pool =
    declaration.database ??
    (settings.DATABASE_URL
      ? new pg.Pool({ connectionString: settings.DATABASE_URL.reveal(), max: 10 })
      : undefined);
  pool?.on('error', (error) => logger.warn({ err: error }, 'idle database connection failed'));
  const store: ExceptionStore =
    declaration.exceptionStore ??
    (pool ? new PostgresExceptionStore(pool, name) : new MemoryExceptionStore());
  const forwarder = settings.SENTRY_DSN
    ? new SentryForwarder(
        settings.SENTRY_DSN.reveal(),
        { name, instance: instanceId, version: declaration.version },
        (error) => logger.warn({ err: error }, 'forwarding an exception failed'),
      )
    : undefined;
  const exceptions = new ExceptionTracker(store, logger, forwarder);
  const audit = pool ? new AuditLog(pool, name) : undefined;

  let service: Service<S> | undefined;
  const { discovery, registration, registryPool } = createDiscovery(
    settings,
    { service: name, instanceId, version: declaration.version },
    pool,
    logger,
    () => service!.url,
  );
  const verifier =
    settings.AUTH_MODE === 'jwt'
      ? new AccessTokenVerifier({
          jwksUrl: settings.AUTH_JWKS_URL,
          issuer: settings.AUTH_ISSUER,
          audience: settings.AUTH_AUDIENCE?.split(',').map((a) => a.trim()),
          clockSkewSeconds: settings.AUTH_CLOCK_SKEW_S,
          algorithms: settings.AUTH_ALGORITHMS.split(',').map((a) => a.trim()),
          rolesClaim: settings.AUTH_ROLES_CLAIM,
        })
      : undefined;
  if (!verifier) logger.warn('AUTH_MODE=none: access tokens are not checked');

  const app = await createServiceApp(settings, {
    name,
    version: declaration.version,
    description: declaration.description,
    logger,
    requestLogger,
    tracing,
    metrics,
    exceptions,
    verifier,
  });

  const clients = new Set<HttpClient>();
  const ctx: ServiceContext<S> = {
    name,
    instanceId,
    config: live,
    logger,
    metrics,
    tracing,
    pool,
    audit,
    exceptions,
    discovery,
    accessTokens: verifier,
    httpClient(target, options = {}) {
      const client = new HttpClient({ discovery, tracing, metrics, logger, ...options, target });
      clients.add(client);
      return client;
    },
  };
  const checks: HealthCheck[] = [];
  if (pool) checks.push(postgresCheck(pool));
  checks.push(...(await provide(declaration.checks, ctx, [])));
  const components = [...(await provide(declaration.components, ctx, []))];
  for (const consumerDeclaration of await provide(declaration.consumers, ctx, [])) {
    const built = buildConsumer(consumerDeclaration, { tracing, metrics, logger });
    components.push(built.component);
    checks.push(built.check);
  }
  for (const component of components) {
    const ready = component.ready;
    if (ready) checks.push({ name: component.name, check: () => ready.call(component) });
  }

  registerBuiltinRoutes(app, {
    readiness: () => service!.readiness(),
    metrics: settings.METRICS_ENABLED ? metrics : undefined,
    exceptions: settings.EXCEPTION_TRACKING_ENABLED ? exceptions : undefined,
    audit,
    adminRole: settings.ADMIN_ROLE,
  });
  registerRoutes(app, await provide(declaration.routes, ctx, []));
  for (const plugin of declaration.plugins ?? [])
    await app.register(async (child) => plugin(child.withTypeProvider<ZodTypeProvider>(), ctx));

  service = new Service<S>(app, ctx, {
    declaration,
    components,
    checks,
    registryPool,
    registration,
    configSource: source,
    clients,
    ownsPool,
  });
  return service;
}
