import { hostname } from 'node:os';
import pg from 'pg';
import type { Logger } from 'pino';
import type { BaseSettings } from '../config/base.settings.js';
import { PostgresServiceRegistry } from './postgres.registry.js';
import { SelfRegistration } from './self-registration.js';
import { DnsDiscovery, type ServiceDiscovery, StaticDiscovery } from './service-discovery.js';

/** What the configured discovery mode gives a service. */
export interface DiscoverySetup {
  readonly discovery: ServiceDiscovery;
  /** Present in `registry` mode: registers this instance once ready. */
  readonly registration: SelfRegistration | undefined;
  /** The registry's database (`registry` mode): its own pool for DISCOVERY_REGISTRY_URL, else the service's. */
  readonly registryPool: pg.Pool | undefined;
}

/**
 * Builds discovery as DISCOVERY_MODE says: DNS names (server-side), a static list, or the
 * PostgreSQL registry with self-registration (client-side). `localUrl` gives the listening URL
 * once the service listens.
 */
export function createDiscovery(
  settings: BaseSettings,
  identity: { readonly service: string; readonly instanceId: string; readonly version?: string | undefined },
  pool: pg.Pool | undefined,
  logger: Logger,
  localUrl: () => string,
): DiscoverySetup {
  if (settings.DISCOVERY_MODE === 'dns')
    return {
      discovery: new DnsDiscovery(settings.DISCOVERY_DNS_TEMPLATE),
      registration: undefined,
      registryPool: undefined,
    };
  if (settings.DISCOVERY_MODE === 'static')
    return {
      discovery: new StaticDiscovery(settings.DISCOVERY_STATIC),
      registration: undefined,
      registryPool: undefined,
    };
  const registryPool = settings.DISCOVERY_REGISTRY_URL
    ? new pg.Pool({ connectionString: settings.DISCOVERY_REGISTRY_URL.reveal(), max: 2 })
    : undefined;
  const registry = new PostgresServiceRegistry(registryPool ?? pool!);
  const metadata: Record<string, string> = identity.version ? { version: identity.version } : {};
  const registration = new SelfRegistration(
    registry,
    () => ({
      service: identity.service,
      instanceId: identity.instanceId,
      url: settings.DISCOVERY_ADVERTISED_URL ?? advertisedUrl(settings.HOST, localUrl()),
      metadata,
    }),
    settings.DISCOVERY_TTL_MS,
    settings.DISCOVERY_HEARTBEAT_MS,
    logger,
  );
  return { discovery: registry, registration, registryPool: registryPool ?? pool };
}

/** Listening on every interface: advertise the host name, which other machines can resolve. */
function advertisedUrl(host: string, localUrl: string): string {
  if (host !== '0.0.0.0' && host !== '::') return localUrl;
  const url = new URL(localUrl);
  url.hostname = hostname();
  return url.toString().replace(/\/$/, '');
}
