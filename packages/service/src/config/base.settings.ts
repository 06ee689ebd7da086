import { z } from 'zod';
import { ASYMMETRIC_ALGORITHM } from '../auth/access-token.verifier.js';
import { StaticDiscovery } from '../discovery/service-discovery.js';
import { parseSentryDsn } from '../exceptions/sentry.forwarder.js';
import { reloadable, secret } from './config.markers.js';

const flag = (fallback: boolean) => z.stringbool().default(fallback);
const milliseconds = (fallback: number) => z.coerce.number().int().min(0).default(fallback);

/**
 * The settings every Ferry service reads, by environment variable name. A service's own schema
 * is merged into these; its names must not clash with them.
 */
export const baseSettings = z.object({
  /** Interface to listen on; `0.0.0.0` in containers. */
  HOST: z.string().default('0.0.0.0'),
  /** HTTP port; 0 picks a free one (tests). */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Identifies this process in logs, traces and the registry; default host-pid-random. */
  SERVICE_INSTANCE_ID: z.string().min(1).optional(),
  /** pino level: fatal, error, warn, info, debug, trace or silent; reloadable. */
  LOG_LEVEL: reloadable(
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  /** One JSON line per HTTP request. */
  REQUEST_LOGGING_ENABLED: flag(true),
  /** The service's own PostgreSQL database; exception tracking and the audit log live there. */
  DATABASE_URL: secret(z.string().min(1)).optional(),
  /** Largest request body accepted, in bytes; larger ones get 413. */
  BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(1_048_576),
  /** `jwt` verifies bearer tokens; `none` turns access-token checks off (local development only). */
  AUTH_MODE: z.enum(['jwt', 'none']).default('jwt'),
  /** JWKS endpoint of the token issuer; required when AUTH_MODE=jwt. */
  AUTH_JWKS_URL: z.url().optional(),
  /** Expected `iss` claim. */
  AUTH_ISSUER: z.string().min(1).optional(),
  /** Expected `aud` claim (comma-separated for several). */
  AUTH_AUDIENCE: z.string().min(1).optional(),
  /** Clock skew allowed on `exp` and `nbf`, in seconds. */
  AUTH_CLOCK_SKEW_S: z.coerce.number().int().min(0).max(300).default(30),
  /** Accepted signature algorithms (comma-separated); asymmetric only. */
  AUTH_ALGORITHMS: z.string().default('RS256,ES256,PS256,EdDSA'),
  /** Claim holding the roles array (dotted path, e.g. `realm_access.roles`). */
  AUTH_ROLES_CLAIM: z.string().default('roles'),
  /** Role that may use the `/admin` routes (exceptions, audit log). */
  ADMIN_ROLE: z.string().default('admin'),
  /** Spans on; exported when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  TRACING_ENABLED: flag(true),
  /** OTLP/HTTP collector base URL, e.g. http://otel-collector:4318. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  /** Share of new traces sampled, 0..1 (parent-based). */
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).default(1),
  /** Prometheus metrics at /metrics. */
  METRICS_ENABLED: flag(true),
  /** OpenAPI document at /docs/json and its UI at /docs. */
  OPENAPI_DOCS_ENABLED: flag(true),
  /** Unexpected errors recorded in the exceptions table (memory when there is no database). */
  EXCEPTION_TRACKING_ENABLED: flag(true),
  /** Sentry-compatible DSN to forward unexpected errors to. */
  SENTRY_DSN: secret(z.url()).optional(),
  /** Time allowed for in-flight work on shutdown before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: milliseconds(10_000),
  /** Pause between failing readiness and closing the listener, so load balancers notice. */
  SHUTDOWN_DELAY_MS: milliseconds(0),
  /** JSON file of settings, read under the environment. */
  CONFIG_FILE: z.string().optional(),
  /** Configuration service URL returning a flat JSON object of settings; overrides the rest. */
  CONFIG_URL: z.url().optional(),
  /** How often the configuration service is polled for reloadable settings. */
  CONFIG_POLL_MS: milliseconds(30_000),
  /** `dns` (server-side: plain DNS names, e.g. Kubernetes Services), `registry` or `static`. */
  DISCOVERY_MODE: z.enum(['dns', 'registry', 'static']).default('dns'),
  /** URL template for `dns` mode; `{service}` is replaced by the service name. */
  DISCOVERY_DNS_TEMPLATE: z.string().default('http://{service}'),
  /** `static` mode: `order=http://a:8080,http://b:8080;kitchen=http://c:8080`. */
  DISCOVERY_STATIC: z.string().default(''),
  /** Registry database for `registry` mode; default DATABASE_URL. */
  DISCOVERY_REGISTRY_URL: secret(z.string().min(1)).optional(),
  /** URL other services reach this instance at; default http://HOST:PORT. */
  DISCOVERY_ADVERTISED_URL: z.url().optional(),
  /** An instance without a heartbeat for this long is no longer offered. */
  DISCOVERY_TTL_MS: milliseconds(15_000),
  /** How often this instance renews its registration. */
  DISCOVERY_HEARTBEAT_MS: milliseconds(5_000),
});

/** The chassis settings after parsing. */
export type BaseSettings = z.output<typeof baseSettings>;

/** Cross-setting rules: reported like any other bad setting, naming the variable. */
export function checkBaseSettings(
  settings: BaseSettings,
  issue: (path: string, message: string) => void,
): void {
  if (settings.AUTH_MODE === 'jwt' && !settings.AUTH_JWKS_URL)
    issue('AUTH_JWKS_URL', 'required when AUTH_MODE=jwt (set AUTH_MODE=none to turn token checks off)');
  if (settings.DISCOVERY_MODE === 'registry' && !settings.DISCOVERY_REGISTRY_URL && !settings.DATABASE_URL)
    issue('DISCOVERY_REGISTRY_URL', 'required when DISCOVERY_MODE=registry and DATABASE_URL is unset');
  if (settings.DISCOVERY_MODE === 'dns' && !settings.DISCOVERY_DNS_TEMPLATE.includes('{service}'))
    issue('DISCOVERY_DNS_TEMPLATE', 'must contain {service}');
  if (settings.DISCOVERY_MODE === 'static') {
    try {
      StaticDiscovery.parse(settings.DISCOVERY_STATIC);
    } catch (error) {
      issue('DISCOVERY_STATIC', (error as Error).message.replace(/^DISCOVERY_STATIC: /, ''));
    }
  }
  const weak = settings.AUTH_ALGORITHMS.split(',').filter((alg) => !ASYMMETRIC_ALGORITHM.test(alg.trim()));
  if (weak.length > 0)
    issue('AUTH_ALGORITHMS', `only asymmetric algorithms are allowed, not ${weak.join(', ')}`);
  if (settings.SENTRY_DSN) {
    try {
      parseSentryDsn(settings.SENTRY_DSN.reveal());
    } catch (error) {
      issue('SENTRY_DSN', (error as Error).message.replace(/^SENTRY_DSN: /, ''));
    }
  }
  if (settings.DISCOVERY_HEARTBEAT_MS >= settings.DISCOVERY_TTL_MS)
    issue('DISCOVERY_HEARTBEAT_MS', 'must be shorter than DISCOVERY_TTL_MS');
}
