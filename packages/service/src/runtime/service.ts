import { migrate } from '@ferry/postgres';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { HttpClient } from '../clients/http-client.js';
import type { ConfigServiceSource } from '../config/config-service.source.js';
import { REGISTRY_MIGRATIONS, SERVICE_MIGRATIONS } from '../database/service.migrations.js';
import type { SelfRegistration } from '../discovery/self-registration.js';
import { type HealthCheck, runChecks } from '../health/health-check.js';
import type { Component } from './component.js';
import type { ServiceContext, ServiceDeclaration } from './service-declaration.js';

/** Where a service is in its life; readiness is true only while `running`. */
export type ServiceState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

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
