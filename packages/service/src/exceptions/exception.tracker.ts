import { trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { fingerprint } from './exception.fingerprint.js';
import type { ExceptionOccurrence, ExceptionStore } from './exception.store.js';
import type { SentryForwarder } from './sentry.forwarder.js';

/**
 * Exception tracking: an unexpected error is logged once with its fingerprint, counted in the
 * store (one row per fingerprint: count, first and last seen, the latest sample with its trace
 * id) and, when a DSN is configured, forwarded to a Sentry-compatible endpoint. Capturing never
 * throws: a failing store is logged and the error itself still reaches the log.
 */
export class ExceptionTracker {
  constructor(
    readonly store: ExceptionStore,
    private readonly logger: Logger,
    private readonly forwarder?: SentryForwarder | undefined,
  ) {}

  /** Records an unexpected error; `where` says where it happened (route, message type, component). */
  async capture(error: unknown, where: Readonly<Record<string, unknown>> = {}): Promise<string> {
    const err = error instanceof Error ? error : new Error(String(error));
    const occurrence: ExceptionOccurrence = {
      fingerprint: fingerprint(err),
      errorType: err.name,
      message: err.message,
      stack: err.stack,
      traceId: trace.getActiveSpan()?.spanContext().traceId,
      context: where,
    };
    this.logger.error(
      { err, fingerprint: occurrence.fingerprint, ...where },
      `unexpected error: ${err.message}`,
    );
    try {
      await this.store.record(occurrence);
    } catch (storeError) {
      this.logger.warn({ err: storeError }, 'could not record exception');
    }
    void this.forwarder?.forward(occurrence);
    return occurrence.fingerprint;
  }
}
