import type pg from 'pg';
import type { ServiceDiscovery, ServiceInstance } from './service-discovery.js';

interface Row {
  service: string;
  instance_id: string;
  url: string;
  metadata: Record<string, string>;
}

/**
 * The service registry as a PostgreSQL table (`ferry.service_instances`): instances register
 * with a time to live and renew it by heartbeat; an instance whose lease ran out is no longer
 * offered. Lookups are cached for `cacheMs` so clients do not query the table per call.
 */
export class PostgresServiceRegistry implements ServiceDiscovery {
  readonly mode = 'registry';
  readonly #cache = new Map<string, { at: number; instances: readonly ServiceInstance[] }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly cacheMs = 1_000,
  ) {}

  /** Registers (or renews) an instance for `ttlMs`. */
  async register(instance: ServiceInstance, ttlMs: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO ferry.service_instances (service, instance_id, url, metadata, expires_at)
       VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
       ON CONFLICT (service, instance_id) DO UPDATE SET url = EXCLUDED.url, metadata = EXCLUDED.metadata,
         heartbeat_at = now(), expires_at = EXCLUDED.expires_at`,
      [instance.service, instance.instanceId, instance.url, instance.metadata, ttlMs],
    );
  }

  /** Removes an instance at once (on shutdown), and leases that ran out over an hour ago. */
  async deregister(service: string, instanceId: string): Promise<void> {
    await this.pool.query(
      `DELETE FROM ferry.service_instances
       WHERE (service = $1 AND instance_id = $2) OR expires_at < now() - interval '1 hour'`,
      [service, instanceId],
    );
    this.#cache.delete(service);
  }

  async instances(service: string): Promise<readonly ServiceInstance[]> {
    const cached = this.#cache.get(service);
    if (cached && Date.now() - cached.at < this.cacheMs) return cached.instances;
    const { rows } = await this.pool.query<Row>(
      `SELECT service, instance_id, url, metadata FROM ferry.service_instances
       WHERE service = $1 AND expires_at > now() ORDER BY instance_id`,
      [service],
    );
    const instances = rows.map((r) => ({
      service: r.service,
      instanceId: r.instance_id,
      url: r.url,
      metadata: r.metadata,
    }));
    this.#cache.set(service, { at: Date.now(), instances });
    return instances;
  }
}
