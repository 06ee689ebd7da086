import { randomUUID } from 'node:crypto';
import type { ExceptionOccurrence } from './exception.store.js';

/** Where a Sentry DSN says events go, and the key they are sent with. */
export interface SentryTarget {
  readonly envelopeUrl: string;
  readonly publicKey: string;
}

/** Reads a DSN `https://<key>@<host>[/<path>]/<project>`; throws naming SENTRY_DSN when it is not one. */
export function parseSentryDsn(dsn: string): SentryTarget {
  let url: URL;
  try {
    url = new URL(dsn);
  } catch {
    throw new Error('SENTRY_DSN: not a URL');
  }
  const parts = url.pathname.split('/').filter(Boolean);
  const project = parts.pop();
  if (!url.username || !project) throw new Error('SENTRY_DSN: expected https://<key>@<host>/<project>');
  const prefix = parts.length > 0 ? `/${parts.join('/')}` : '';
  return {
    envelopeUrl: `${url.protocol}//${url.host}${prefix}/api/${project}/envelope/`,
    publicKey: url.username,
  };
}

const FRAME = /^\s*at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/;

function frames(stack: string | undefined) {
  return (stack ?? '')
    .split('\n')
    .map((line) => FRAME.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({
      function: m[1] ?? '<anonymous>',
      filename: m[2]!,
      lineno: Number(m[3]),
      colno: Number(m[4]),
      in_app: !m[2]!.includes('node_modules') && !m[2]!.startsWith('node:'),
    }))
    .reverse();
}

/**
 * Sends captured exceptions to a Sentry-compatible endpoint (Sentry, GlitchTip, Bugsink) as
 * envelopes, with Ferry's fingerprint so the receiver groups them the same way. Sending never
 * throws and never blocks the caller; at most `maxInFlight` sends run at once, the rest are dropped
 * and counted.
 */
export class SentryForwarder {
  readonly #target: SentryTarget;
  #inFlight = 0;
  dropped = 0;
  failed = 0;

  constructor(
    dsn: string,
    private readonly service: {
      readonly name: string;
      readonly instance: string;
      readonly version?: string | undefined;
    },
    private readonly onFailure: (error: unknown) => void = () => {},
    private readonly maxInFlight = 20,
  ) {
    this.#target = parseSentryDsn(dsn);
  }

  /** Sends one occurrence in the background; resolves when it was sent or given up. */
  forward(occurrence: ExceptionOccurrence): Promise<void> {
    if (this.#inFlight >= this.maxInFlight) {
      this.dropped++;
      return Promise.resolve();
    }
    this.#inFlight++;
    return this.#send(occurrence)
      .catch((error) => {
        this.failed++;
        this.onFailure(error);
      })
      .finally(() => {
        this.#inFlight--;
      });
  }

  async #send(o: ExceptionOccurrence): Promise<void> {
    const eventId = randomUUID().replaceAll('-', '');
    const event = {
      event_id: eventId,
      timestamp: Date.now() / 1000,
      platform: 'node',
      level: 'error',
      logger: this.service.name,
      server_name: this.service.instance,
      release: this.service.version,
      fingerprint: [o.fingerprint],
      tags: { service: this.service.name },
      exception: {
        values: [{ type: o.errorType, value: o.message, stacktrace: { frames: frames(o.stack) } }],
      },
      contexts: o.traceId ? { trace: { trace_id: o.traceId, span_id: '0000000000000000' } } : undefined,
      extra: o.context,
    };
    const body = [
      JSON.stringify({ event_id: eventId, sent_at: new Date().toISOString() }),
      JSON.stringify({ type: 'event' }),
      JSON.stringify(event),
    ].join('\n');
    const response = await fetch(this.#target.envelopeUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-sentry-envelope',
        'x-sentry-auth': `Sentry sentry_version=7, sentry_key=${this.#target.publicKey}, sentry_client=ferry/0.1`,
      },
      body,
      signal: AbortSignal.timeout(5_000),
    });
    await response.body?.cancel();
    if (!response.ok) throw new Error(`Sentry endpoint answered ${response.status}`);
  }
}
