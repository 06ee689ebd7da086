/**
 * @module @ferry/service/testing
 *
 * Helpers for testing services built on @ferry/service: a token issuer with a real JWKS
 * endpoint and key rotation, a log capture, and the in-memory span exporter.
 */
export { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
export * from './log-capture.js';
export * from './test-issuer.js';
