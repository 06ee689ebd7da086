import { type Logger, symbols } from 'pino';
import { isoTimeCached } from './logger.js';

/** What one request line says. */
export interface RequestLine {
  readonly method: string;
  /** The URL as logged: sensitive query values already masked. */
  readonly url: string;
  readonly route: string;
  readonly status: number;
  readonly durationMs: number;
  readonly correlationId: string;
  readonly traceId?: string | undefined;
  readonly spanId?: string | undefined;
  readonly principal?: string | undefined;
}

type Stream = { write(line: string): void };

/**
 * Writes the request lines of a request logger (see `createRequestLogger`): the very line pino
 * would write for `logger.info({ method, url, route, status, duration_ms, correlation_id,
 * trace_id, span_id, principal }, 'request')` (level, time, the logger's bindings, the fields,
 * `msg`), built directly as text and handed to the logger's own destination. pino turns the
 * fields object into JSON key by key, through its serializer checks; a request line's fields are
 * known, so its text is a template, and the strings that recur (method, route) are quoted once.
 * The logger's level is read on every line, so a live change of LOG_LEVEL applies. Decision 0111.
 */
export class RequestLog {
  readonly #logger: Logger;
  readonly #stream: Stream;
  readonly #bindings: string;
  readonly #quoted = new Map<string, string>();
  /** A destination that wants pino's per-line metadata (a multistream) gets its lines from pino. */
  readonly #throughPino: boolean;

  constructor(logger: Logger) {
    this.#logger = logger;
    this.#stream = (logger as unknown as Record<symbol, Stream>)[symbols.streamSym]!;
    // pino's own text of the bindings: `,"service":"…","instance":"…"`.
    this.#bindings = (logger as unknown as Record<symbol, string>)[symbols.chindingsSym] ?? '';
    this.#throughPino =
      (this.#stream as unknown as Record<symbol, unknown>)[symbols.needsMetadataGsym] === true;
  }

  write(line: RequestLine): void {
    if (!this.#logger.isLevelEnabled('info')) return;
    if (this.#throughPino) {
      this.#logger.info(
        {
          method: line.method,
          url: line.url,
          route: line.route,
          status: line.status,
          duration_ms: line.durationMs,
          correlation_id: line.correlationId,
          trace_id: line.traceId,
          span_id: line.spanId,
          principal: line.principal,
        },
        'request',
      );
      return;
    }
    let text = `{"level":"info"${isoTimeCached()}${this.#bindings},"method":${this.#quote(line.method)},"url":${JSON.stringify(line.url)},"route":${this.#quote(line.route)},"status":${line.status},"duration_ms":${line.durationMs},"correlation_id":${JSON.stringify(line.correlationId)}`;
    if (line.traceId !== undefined) text += `,"trace_id":"${line.traceId}"`;
    if (line.spanId !== undefined) text += `,"span_id":"${line.spanId}"`;
    if (line.principal !== undefined) text += `,"principal":${JSON.stringify(line.principal)}`;
    this.#stream.write(`${text},"msg":"request"}\n`);
  }

  /** A recurring string's JSON text (routes and methods: a few hundred at most are kept). */
  #quote(value: string): string {
    let quoted = this.#quoted.get(value);
    if (quoted === undefined) {
      quoted = JSON.stringify(value);
      if (this.#quoted.size < 1000) this.#quoted.set(value, quoted);
    }
    return quoted;
  }
}
