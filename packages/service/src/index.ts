/**
 * @module @ferry/service
 *
 * Ferry's service runtime: `createService` builds a Fastify service from a declaration and gives
 * it validated configuration (with secrets and live reload), structured logs with trace and
 * correlation ids, `/health/live` and `/health/ready`, Prometheus metrics, OpenTelemetry tracing
 * over HTTP, gRPC and messages, exception tracking, an audit log, problem+json errors, zod
 * schemas with OpenAPI at `/docs`, JWT access tokens with role and scope checks, graceful
 * shutdown, resilient HTTP and gRPC clients, and service discovery.
 */
export * from './audit/audit-log.js';
export * from './auth/access-token.verifier.js';
export * from './auth/principal.header.js';
export * from './auth/principal.js';
export * from './clients/grpc-client.js';
export * from './clients/grpc-server.js';
export * from './clients/http-client.js';
export * from './clients/upstream.error.js';
export * from './config/base.settings.js';
export * from './config/config.error.js';
export * from './config/config.loader.js';
export * from './config/config.markers.js';
export * from './config/config-service.source.js';
export * from './config/live-config.js';
export * from './config/secret.js';
export * from './context/request-context.js';
export * from './database/service.migrations.js';
export * from './discovery/discovery.factory.js';
export * from './discovery/load-balancer.js';
export * from './discovery/postgres.registry.js';
export * from './discovery/self-registration.js';
export * from './discovery/service-discovery.js';
export * from './errors/problem.js';
export * from './exceptions/exception.fingerprint.js';
export * from './exceptions/exception.store.js';
export * from './exceptions/exception.store.postgres.js';
export * from './exceptions/exception.tracker.js';
export * from './exceptions/sentry.forwarder.js';
export * from './health/health-check.js';
export type { RouteAuth } from './http/auth.hook.js';
export * from './http/dead-letter.routes.js';
export { expectedProblem, type FieldIssue } from './http/error-handler.js';
export { CORRELATION_HEADER } from './http/observability.hooks.js';
export * from './http/route.js';
export * from './logging/logger.js';
export * from './metrics/consumer.metrics.js';
export * from './metrics/metrics.js';
export * from './resilience/either.breaker.js';
export * from './resilience/resilience.policy.js';
export * from './runtime/component.js';
export * from './runtime/consumers.js';
export * from './runtime/create-service.js';
export * from './runtime/run-service.js';
export * from './runtime/service.js';
export * from './runtime/service-app.js';
export * from './runtime/service-declaration.js';
export * from './tracing/message-tracing.js';
export * from './tracing/tracing.js';
export * from './tracing/w3c.js';
