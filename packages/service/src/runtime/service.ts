import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { migrate } from '@ferry/postgres';
import fastify, { type FastifyInstance, LogController } from 'fastify';
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AuditLog } from '../audit/audit-log.js';
import { AccessTokenVerifier } from '../auth/access-token.verifier.js';
import { HttpClient } from '../clients/http-client.js';
import { type BaseSettings, baseSettings, checkBaseSettings } from '../config/base.settings.js';
import { type ConfigLayers, mergeLayers } from '../config/config.loader.js';
import { ConfigServiceSource } from '../config/config-service.source.js';
import { LiveConfig } from '../config/live-config.js';
import { REGISTRY_MIGRATIONS, SERVICE_MIGRATIONS } from '../database/service.migrations.js';
import { PostgresServiceRegistry } from '../discovery/postgres.registry.js';
import { SelfRegistration } from '../discovery/self-registration.js';
import { DnsDiscovery, type ServiceDiscovery, StaticDiscovery } from '../discovery/service-discovery.js';
import { type ExceptionStore, MemoryExceptionStore } from '../exceptions/exception.store.js';
import { PostgresExceptionStore } from '../exceptions/exception.store.postgres.js';
import { ExceptionTracker } from '../exceptions/exception.tracker.js';
import { SentryForwarder } from '../exceptions/sentry.forwarder.js';
import { type HealthCheck, postgresCheck, runChecks } from '../health/health-check.js';
import { registerBuiltinRoutes } from '../http/builtin.routes.js';
import { frameworkErrors, installErrorHandling } from '../http/error-handler.js';
import { observeRequests } from '../http/observability.hooks.js';
import { registerOpenApi } from '../http/openapi.plugin.js';
import {
  registerRoutes,
  type ZodTypeProvider,
  zodSerializerCompiler,
  zodValidatorCompiler,
} from '../http/route.js';
import { createLogger, createRequestLogger } from '../logging/logger.js';
import { Metrics } from '../metrics/metrics.js';
import { Tracing } from '../tracing/tracing.js';
import type { Component } from './component.js';
import { buildConsumer } from './consumers.js';
import type { Provided, ServiceContext, ServiceDeclaration, Settings } from './service-declaration.js';

/** Where a service is in its life; readiness is true only while `running`. */
export type ServiceState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

const CORRELATION_ID = /^[\w.:@-]{1,128}$/;

/**
 * A running (or runnable) Ferry service: a Fastify app with the cross-cutting concerns wired in,
 * and the components it starts and stops around the HTTP listener.
 */
// biome-ignore lint/suspicious/noExplicitAny: `Service` alone means a service of any settings
export class Service<S extends z.ZodRawShape = any> {
  #state: ServiceState = 'created';
  #stopping: Promise<void> | undefined;
  #url: string | undefined;
  readonly #started: Component[] = [];
  readonly #timers: NodeJS.Timeout[] = [];

  constructor(
    /** The Fastify instance: `app.inject()` in tests, hooks and decorators for the rare need. */
    readonly app: FastifyInstance,
    readonly context: ServiceContext<S>,
    private readonly parts: {
      readonly declaration: ServiceDeclaration<S>;
      readonly components: readonly Component[];
      readonly checks: readonly HealthCheck[];
      readonly registryPool: pg.Pool | undefined;
      readonly registration: SelfRegistration | undefined;
      readonly configSource: ConfigServiceSource | undefined;
      readonly clients: Set<HttpClient>;
      readonly ownsPool: boolean;
    },
  ) {}

  get name(): string {
    return this.context.name;
  }

  get state(): ServiceState {
    return this.#state;
  }

  /** `http://host:port` once listening. */
  get url(): string {
    if (!this.#url) throw new Error(`${this.name} is not listening yet`);
    return this.#url;
  }

  get logger(): Logger {
    return this.context.logger;
  }

  /** Readiness: running and every check passing. */
  async readiness(): Promise<{ ready: boolean; report: Record<string, unknown> }> {
    if (this.#state !== 'running') return { ready: false, report: { status: 'DOWN', state: this.#state } };
    const checks = await runChecks(this.parts.checks);
    const ready = Object.values(checks).every((c) => c.status === 'UP');
    return { ready, report: { status: ready ? 'UP' : 'DOWN', state: this.#state, checks } };
  }

  /**
   * Migrates, listens (liveness answers, readiness says starting), starts the components in
   * order, registers in the service registry, then reports ready. A failure stops what started.
   */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error(`${this.name} was already started`);
    this.#state = 'starting';
    const { pool, logger } = this.context;
    const settings = this.context.config.current;
    try {
      if (pool) {
        await migrate(pool, 'ferry.service', SERVICE_MIGRATIONS);
        if (this.parts.declaration.migrations)
          await migrate(pool, this.name, this.parts.declaration.migrations);
      }
      if (this.parts.registryPool)
        await migrate(this.parts.registryPool, 'ferry.registry', REGISTRY_MIGRATIONS);
      const address = await this.app.listen({ host: settings.HOST, port: settings.PORT });
      const port = new URL(address).port;
      const localHost = settings.HOST === '0.0.0.0' || settings.HOST === '::' ? '127.0.0.1' : settings.HOST;
      this.#url = `http://${localHost.includes(':') ? `[${localHost}]` : localHost}:${port}`;
      for (const component of this.parts.components) {
        await component.start();
        this.#started.push(component);
        logger.debug({ component: component.name }, 'component started');
      }
      this.#pollConfig();
      await this.parts.registration?.register();
      this.#state = 'running';
      logger.info({ url: this.#url, instance: this.context.instanceId }, `${this.name} started`);
    } catch (error) {
      logger.error({ err: error }, `${this.name} failed to start`);
      await this.stop();
      throw error;
    }
  }

  /**
   * Graceful shutdown: readiness goes false, the instance leaves the registry, the listener stops
   * taking requests and waits for those in flight, components stop in reverse order (consumers
   * finish their handlers), spans are flushed, pools closed. Bounded by SHUTDOWN_TIMEOUT_MS.
   * Calling it again returns the same promise.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    const { logger } = this.context;
    const settings = this.context.config.current;
    this.#state = 'stopping';
    for (const timer of this.#timers) clearInterval(timer);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), settings.SHUTDOWN_TIMEOUT_MS);
    });
    const work = (async () => {
      await this.parts.registration
        ?.deregister()
        .catch((error: unknown) => logger.warn({ err: error }, 'deregistration failed'));
      if (settings.SHUTDOWN_DELAY_MS > 0) await new Promise((r) => setTimeout(r, settings.SHUTDOWN_DELAY_MS));
      // Connections of requests that finish while closing go idle; close them as they do.
      const idle = setInterval(() => this.app.server.closeIdleConnections(), 50);
      await this.app.close().finally(() => clearInterval(idle));
      for (const component of this.#started.splice(0).reverse()) {
        await component
          .stop()
          .catch((error: unknown) =>
            logger.error({ err: error, component: component.name }, 'component failed to stop'),
          );
      }
      await Promise.all([...this.parts.clients].map((c) => c.close().catch(() => {})));
      await this.context.tracing.shutdown().catch(() => {});
      if (this.parts.ownsPool) await this.context.pool?.end().catch(() => {});
      if (this.parts.registryPool && this.parts.registryPool !== this.context.pool)
        await this.parts.registryPool.end().catch(() => {});
      return 'done' as const;
    })();
    const outcome = await Promise.race([work, deadline]);
    clearTimeout(timer);
    this.#state = 'stopped';
    if (outcome === 'timeout')
      logger.warn({ timeout_ms: settings.SHUTDOWN_TIMEOUT_MS }, `${this.name} did not stop in time`);
    else logger.info(`${this.name} stopped`);
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
  }

  #pollConfig(): void {
    const source = this.parts.configSource;
    if (!source) return;
    const { logger, config } = this.context;
    const interval = Math.max(config.current.CONFIG_POLL_MS, 100);
    const timer = setInterval(() => {
      source
        .fetch()
        .then((remote) => {
          if (!remote) return;
          const { applied, needRestart } = config.reload(remote);
          if (applied.length > 0) logger.info({ settings: applied }, 'configuration reloaded');
          if (needRestart.length > 0)
            logger.warn({ settings: needRestart }, 'changed settings need a restart');
        })
        .catch((error: unknown) => logger.warn({ err: error }, 'configuration service poll failed'));
    }, interval);
    timer.unref();
    this.#timers.push(timer);
  }
}

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
  let registryPool: pg.Pool | undefined;
  let discovery: ServiceDiscovery;
  let registration: SelfRegistration | undefined;
  if (settings.DISCOVERY_MODE === 'registry') {
    registryPool = settings.DISCOVERY_REGISTRY_URL
      ? new pg.Pool({ connectionString: settings.DISCOVERY_REGISTRY_URL.reveal(), max: 2 })
      : pool!;
    const registry = new PostgresServiceRegistry(registryPool);
    discovery = registry;
    const metadata: Record<string, string> = declaration.version ? { version: declaration.version } : {};
    registration = new SelfRegistration(
      registry,
      () => ({
        service: name,
        instanceId,
        url: settings.DISCOVERY_ADVERTISED_URL ?? advertisedUrl(settings.HOST, service!.url),
        metadata,
      }),
      settings.DISCOVERY_TTL_MS,
      settings.DISCOVERY_HEARTBEAT_MS,
      logger,
    );
  } else {
    discovery =
      settings.DISCOVERY_MODE === 'static'
        ? new StaticDiscovery(settings.DISCOVERY_STATIC)
        : new DnsDiscovery(settings.DISCOVERY_DNS_TEMPLATE);
  }
  {
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
        version: declaration.version ?? '0.0.0',
        description: declaration.description,
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
}

function advertisedUrl(host: string, localUrl: string): string {
  if (host !== '0.0.0.0' && host !== '::') return localUrl;
  const url = new URL(localUrl);
  url.hostname = hostname();
  return url.toString().replace(/\/$/, '');
}
