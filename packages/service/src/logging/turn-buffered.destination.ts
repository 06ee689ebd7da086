import type { DestinationStream } from 'pino';

/** Where {@link TurnBufferedDestination} hands its lines, as UTF-8 bytes: a synchronous writer. */
export interface SyncSink {
  write(bytes: Buffer): unknown;
}

/** Past this many characters held, the lines are written at once rather than at the end of the turn. */
const MAX_HELD_CHARS = 64 * 1024;

/**
 * A log destination that gathers the lines of one event-loop turn and writes them with one
 * synchronous write when the turn ends (`setImmediate`), and at once when the process exits or
 * `flush` is called: a busy service makes one write per turn instead of one per line, and a
 * quiet service's line still leaves within the turn that logged it. Synchronous, so that nothing
 * is left in flight at exit (the asynchronous writer lost a process's last lines; decision 0109).
 */
export class TurnBufferedDestination implements DestinationStream {
  #held = '';
  #scheduled = false;
  readonly #sink: SyncSink;
  readonly #flushAtEndOfTurn = () => {
    this.#scheduled = false;
    this.flushSync();
  };

  constructor(sink: SyncSink) {
    this.#sink = sink;
  }

  write(line: string): void {
    this.#held += line;
    if (this.#held.length > MAX_HELD_CHARS) this.flushSync();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushAtEndOfTurn);
    }
  }

  /** Writes the lines held now. */
  flushSync(): void {
    if (this.#held === '') return;
    const lines = Buffer.from(this.#held, 'utf8');
    this.#held = '';
    this.#sink.write(lines);
  }

  /** What `logger.flush(callback)` calls. */
  flush(callback?: (error?: Error) => void): void {
    try {
      this.flushSync();
    } catch (error) {
      callback?.(error as Error);
      return;
    }
    callback?.();
  }
}
