import { trace } from '@opentelemetry/api';
import { type DestinationStream, type Logger, pino } from 'pino';
import { currentCorrelationId } from '../context/request-context.js';
import { TurnBufferedDestination } from './turn-buffered.destination.js';

/** Paths pino blanks in every line: credentials never reach the log aggregator. */
export const REDACTED_PATHS = [
  'authorization',
  'password',
  'token',
  'secret',
  '*.authorization',
  '*.password',
  '*.token',
  '*.secret',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly service: string;
  readonly instance: string;
  readonly level?: string;
  /** Where lines go; default standard output. */
  readonly destination?: DestinationStream;
}

/**
 * A pino logger writing one JSON line per event, each with `service`, `instance` and, when there
 * is one, the active `trace_id`, `span_id` and `correlation_id`: what a log aggregator needs to
 * join a line to its trace and its conversation. Credentials under the usual names are redacted.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      ...baseOptions(options),
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      mixin() {
        const span = trace.getActiveSpan()?.spanContext();
        const correlationId = currentCorrelationId();
        if (!span && !correlationId) return {};
        return {
          ...(span ? { trace_id: span.traceId, span_id: span.spanId } : {}),
          ...(correlationId ? { correlation_id: correlationId } : {}),
        };
      },
    },
    options.destination ?? defaultDestination(),
  );
}

/**
 * The logger of request lines: the same fields and destination, without redaction and the
 * context mixin, since the runtime builds each line itself from known, non-secret values (the
 * URL's sensitive query values already masked) and sets the ids explicitly.
 */
export function createRequestLogger(options: LoggerOptions): Logger {
  return pino(baseOptions(options), options.destination ?? defaultDestination());
}

function baseOptions(options: LoggerOptions) {
  return {
    level: options.level ?? 'info',
    base: { service: options.service, instance: options.instance },
    timestamp: isoTimeCached,
    formatters: { level: (label: string) => ({ level: label }) },
  };
}

let lastMs = 0;
let lastTime = '';

/** pino's ISO `time`, formatted once per millisecond rather than once per line. */
export function isoTimeCached(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

let stdout: TurnBufferedDestination | undefined;

/**
 * Standard output, the lines of each event-loop turn written together and synchronously at the
 * end of the turn (and at exit): one write per turn for a busy service, while a quiet service's
 * lines leave at once, not when some kilobytes have gathered.
 */
function defaultDestination(): DestinationStream {
  if (!stdout) {
    // sonic-boom (pino's destination) in buffer mode writes the bytes it is given as they are;
    // with strings it would measure and encode each batch twice more. Its types declare strings only.
    const sonic = pino.destination({ dest: 1, sync: true, contentMode: 'buffer' });
    const destination = new TurnBufferedDestination({
      write: (bytes) => sonic.write(bytes as unknown as string),
    });
    process.on('exit', () => destination.flushSync());
    stdout = destination;
  }
  return stdout;
}

const SENSITIVE_QUERY = /token|secret|password|key|code/i;

/** A URL for the log: query values whose names look sensitive are replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const name of [...params.keys()]) if (SENSITIVE_QUERY.test(name)) params.set(name, '[redacted]');
  return `${url.slice(0, q)}?${params.toString()}`;
}
