import type { Migration } from '@ferry/postgres';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type pg from 'pg';
import type { DestinationStream, Logger } from 'pino';
import type { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import type { AccessTokenVerifier } from '../auth/access-token.verifier.js';
import type { HttpClient, HttpClientOptions } from '../clients/http-client.js';
import type { BaseSettings } from '../config/base.settings.js';
import type { ConfigLayers } from '../config/config.loader.js';
import type { LiveConfig } from '../config/live-config.js';
import type { ServiceDiscovery } from '../discovery/service-discovery.js';
import type { ExceptionStore } from '../exceptions/exception.store.js';
import type { ExceptionTracker } from '../exceptions/exception.tracker.js';
import type { HealthCheck } from '../health/health-check.js';
import type { AnyRoute, ZodTypeProvider } from '../http/route.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Tracing } from '../tracing/tracing.js';
import type { Component } from './component.js';
import type { ConsumerDeclaration } from './consumers.js';

/** The chassis settings and the service's own, parsed. */
export type Settings<S extends z.ZodRawShape> = BaseSettings & z.output<z.ZodObject<S>>;

/** The Fastify instance route plugins get: typed by zod schemas. */
export type ServiceApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** What every part of a service is built with. */
// biome-ignore lint/suspicious/noExplicitAny: `ServiceContext` alone means any settings
export interface ServiceContext<S extends z.ZodRawShape = any> {
  readonly name: string;
  readonly instanceId: string;
  /** The settings; `config.current` sees reloads of reloadable settings. */
  readonly config: LiveConfig<Settings<S>>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracing: Tracing;
  /** The service's database, when DATABASE_URL (or `database`) is given. */
  readonly pool: pg.Pool | undefined;
  /** The audit log; there when the service has a database. */
  readonly audit: AuditLog | undefined;
  readonly exceptions: ExceptionTracker;
  readonly discovery: ServiceDiscovery;
  /** The access-token verifier (for a gRPC server or a gateway); `undefined` with AUTH_MODE=none. */
  readonly accessTokens: AccessTokenVerifier | undefined;
  /** A resilient client for another service (by name, through discovery) or a base URL. */
  httpClient(target: string, options?: Omit<HttpClientOptions, 'target'>): HttpClient;
}

/** A value, or a function of the context that gives it. */
export type Provided<T, S extends z.ZodRawShape> = T | ((ctx: ServiceContext<S>) => T | Promise<T>);

/** Routes as a Fastify plugin, for what route lists cannot say. */
export type RoutePlugin<S extends z.ZodRawShape> = (
  app: ServiceApp,
  ctx: ServiceContext<S>,
) => void | Promise<void>;

/** What a service is: its name, settings, routes, checks, components and message handlers. */
export interface ServiceDeclaration<S extends z.ZodRawShape = Record<never, never>> {
  /** Used in logs, traces, metrics, the registry and the tables the runtime writes. */
  readonly name: string;
  readonly version?: string | undefined;
  readonly description?: string | undefined;
  /** The service's own settings by variable name, merged with the chassis's. */
  readonly config?: z.ZodObject<S> | undefined;
  /** Where settings come from; default the environment and CONFIG_FILE. */
  readonly configLayers?: ConfigLayers | undefined;
  /** Routes declared with `defineRoute`: validated, authorized and published in OpenAPI. */
  readonly routes?: Provided<readonly AnyRoute[], S> | undefined;
  /** Fastify plugins, each in its own encapsulation context, after `routes`. */
  readonly plugins?: readonly RoutePlugin<S>[] | undefined;
  readonly checks?: Provided<readonly HealthCheck[], S> | undefined;
  readonly components?: Provided<readonly Component[], S> | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: each consumer has its own transaction type
  readonly consumers?: Provided<readonly ConsumerDeclaration<any>[], S> | undefined;
  /** The service's schema migrations, applied at start (set name: the service name). */
  readonly migrations?: readonly Migration[] | undefined;
  /** A pool to use instead of one made from DATABASE_URL. */
  readonly database?: pg.Pool | undefined;
  /** Spans also go here (tests: an `InMemorySpanExporter`). */
  readonly spanExporter?: SpanExporter | undefined;
  /** Log lines go here instead of standard output. */
  readonly logDestination?: DestinationStream | undefined;
  /** Where exceptions are tracked instead of the database table. */
  readonly exceptionStore?: ExceptionStore | undefined;
}
