import type { Logger } from 'pino';
import type { PostgresServiceRegistry } from './postgres.registry.js';
import type { ServiceInstance } from './service-discovery.js';

/**
 * Self-registration: registers this instance once it is ready, renews the lease every
 * `heartbeatMs` (re-creating it if it was lost), and deregisters first thing on shutdown so that
 * clients stop choosing it before it stops answering.
 */
export class SelfRegistration {
  #timer: NodeJS.Timeout | undefined;
  #registered = false;

  constructor(
    private readonly registry: PostgresServiceRegistry,
    private readonly instance: () => ServiceInstance,
    private readonly ttlMs: number,
    private readonly heartbeatMs: number,
    private readonly logger: Logger,
  ) {}

  get registered(): boolean {
    return this.#registered;
  }

  async register(): Promise<void> {
    const instance = this.instance();
    await this.registry.register(instance, this.ttlMs);
    this.#registered = true;
    this.logger.info({ url: instance.url, ttl_ms: this.ttlMs }, 'registered in the service registry');
    this.#timer = setInterval(() => {
      this.registry.register(instance, this.ttlMs).catch((error: unknown) => {
        this.logger.warn({ err: error }, 'service registry heartbeat failed');
      });
    }, this.heartbeatMs);
    this.#timer.unref();
  }

  async deregister(): Promise<void> {
    clearInterval(this.#timer);
    if (!this.#registered) return;
    this.#registered = false;
    const instance = this.instance();
    await this.registry.deregister(instance.service, instance.instanceId);
    this.logger.info('deregistered from the service registry');
  }
}
