import type { Broker } from '@ferry/core';
import type { Lsn } from './lsn.js';
import { OutboxTransactionAssembler } from './outbox-transactions.js';
import { decodePgOutput } from './pgoutput-decoder.js';
import { PublishPipeline } from './publish-pipeline.js';
import { ReplicationConnection } from './replication-connection.js';
import type { ReplicationFrame } from './replication-protocol.js';
import { standbyStatusUpdate } from './replication-protocol.js';
import type { TailingRelayEvent } from './tailing-relay-events.js';

/** Options of {@link TailingSession.open}. */
export interface TailingSessionOptions {
  readonly connectionString: string;
  readonly slot: string;
  readonly publication: string;
  readonly table: { readonly schema: string; readonly name: string };
  readonly broker: Broker;
  readonly batchSize: number;
  /** Stop reading from the server above this many unacknowledged messages. */
  readonly maxPendingMessages: number;
  /** Send a status update at least this often, in ms. */
  readonly statusIntervalMs: number;
  /** The slot's confirmed position when the session starts. */
  readonly confirmedLsn: Lsn;
  readonly relay: string;
  readonly onEvent: (event: TailingRelayEvent) => void;
}

/**
 * One streaming session on the slot: decodes the pgoutput stream into committed outbox
 * transactions, publishes them through a {@link PublishPipeline}, and confirms to the server
 * exactly the positions the broker acknowledged. While nothing is outstanding (no transaction
 * open, nothing unacknowledged) it confirms the server's keepalive position too, as
 * PostgreSQL's own subscriber does, so that WAL written by other tables is not held back.
 */
export class TailingSession {
  readonly #connection: ReplicationConnection;
  readonly #pipeline: PublishPipeline;
  readonly #assembler: OutboxTransactionAssembler;
  readonly #failed: Promise<Error>;
  #fail!: (error: Error) => void;
  #confirmed: Lsn;
  #received: Lsn;
  #paused = false;
  #statusTimer: NodeJS.Timeout | undefined;

  private constructor(
    connection: ReplicationConnection,
    private readonly options: TailingSessionOptions,
  ) {
    this.#connection = connection;
    this.#confirmed = options.confirmedLsn;
    this.#received = options.confirmedLsn;
    this.#assembler = new OutboxTransactionAssembler(options.table);
    this.#failed = new Promise<Error>((resolve) => {
      this.#fail = resolve;
    });
    this.#pipeline = new PublishPipeline({
      broker: options.broker,
      batchSize: options.batchSize,
      onAcknowledged: (lsn) => this.#acknowledged(lsn),
      onPublished: (count, durationMs) =>
        options.onEvent({ kind: 'published', relay: options.relay, count, durationMs }),
      onFailed: (error, retryInMs) =>
        options.onEvent({ kind: 'publish-failed', relay: options.relay, error, retryInMs }),
    });
  }

  /** Connects and starts streaming; rejects if the server refuses the slot. */
  static async open(options: TailingSessionOptions): Promise<TailingSession> {
    const connection = await ReplicationConnection.connect(options.connectionString);
    const session = new TailingSession(connection, options);
    try {
      await connection.stream(options.slot, options.publication, (frame) => session.#onFrame(frame));
    } catch (error) {
      await connection.close();
      throw error;
    }
    session.#statusTimer = setInterval(() => session.#sendStatus(), options.statusIntervalMs);
    return session;
  }

  /** Settles with the error that ended the stream: connection lost, or data it could not decode. */
  get ended(): Promise<Error> {
    return Promise.race([
      this.#failed,
      this.#connection.closed.then((error) => error ?? new Error('replication connection closed')),
    ]);
  }

  /** Messages received and not yet acknowledged by the broker. */
  get pendingMessages(): number {
    return this.#pipeline.pendingMessages;
  }

  /** Commit time of the oldest message not yet acknowledged. */
  get oldestCommitMs(): number | undefined {
    return this.#pipeline.oldestCommitMs;
  }

  /** The last position confirmed to the server. */
  get confirmedLsn(): Lsn {
    return this.#confirmed;
  }

  /**
   * Lets the batch in flight finish and confirms it, then closes the connection. What was
   * received after it is not confirmed, so the next session receives it again.
   */
  async close(): Promise<void> {
    clearInterval(this.#statusTimer);
    await this.#pipeline.close();
    this.#sendStatus();
    await this.#connection.close();
  }

  #onFrame(frame: ReplicationFrame): void {
    try {
      if (frame.kind === 'xlog') {
        if (frame.start > this.#received) this.#received = frame.start;
        const transaction = this.#assembler.accept(decodePgOutput(frame.data));
        if (!transaction) return;
        this.#pipeline.push(transaction);
        if (!this.#paused && this.#pipeline.pendingMessages > this.options.maxPendingMessages) {
          this.#paused = true;
          this.#connection.pause();
        }
        return;
      }
      if (frame.walEnd > this.#received) this.#received = frame.walEnd;
      if (this.#pipeline.idle && !this.#assembler.inTransaction && frame.walEnd > this.#confirmed) {
        this.#confirmed = frame.walEnd;
        this.#sendStatus();
      } else if (frame.replyRequested) this.#sendStatus();
    } catch (error) {
      this.#fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #acknowledged(lsn: Lsn): void {
    if (lsn > this.#confirmed) this.#confirmed = lsn;
    this.#sendStatus();
    if (this.#paused && this.#pipeline.pendingMessages <= this.options.maxPendingMessages / 2) {
      this.#paused = false;
      this.#connection.resume();
    }
  }

  #sendStatus(): void {
    // Received never trails confirmed: every confirmed position was received first.
    this.#connection.send(standbyStatusUpdate(this.#received, this.#confirmed));
  }
}
