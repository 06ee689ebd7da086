import type { Broker, WireMessage } from '@ferry/core';
import type { Lsn } from './lsn.js';
import type { CommittedTransaction } from './outbox-transactions.js';
import { WakeSignal } from './wake-signal.js';

/** Options of {@link PublishPipeline}. */
export interface PublishPipelineOptions {
  readonly broker: Broker;
  /** Most messages in one `broker.publish` call; more transactions wait for the next batch. */
  readonly batchSize: number;
  /** Called, in order, with the end LSN of the last transaction of each acknowledged batch. */
  readonly onAcknowledged: (lsn: Lsn) => void;
  readonly onPublished?: (count: number, durationMs: number) => void;
  readonly onFailed?: (error: unknown, retryInMs: number) => void;
}

/**
 * Publishes committed transactions in commit order, one batch in flight at a time. Batches
 * form by themselves: a transaction that arrives while nothing is in flight leaves at the end
 * of the current event-loop turn (so a burst read from the socket in one go travels together),
 * and everything that arrives while a batch is in flight goes in the next one. There is no
 * timer, so an idle stream costs no latency. A failed batch is retried with backoff until it
 * is acknowledged or the pipeline closes; nothing after it is acknowledged before it.
 */
export class PublishPipeline {
  readonly #queue: CommittedTransaction[] = [];
  readonly #closing = new WakeSignal();
  #queuedMessages = 0;
  #inFlight: readonly CommittedTransaction[] = [];
  #inFlightMessages = 0;
  #pumping: Promise<void> | undefined;
  #closed = false;

  constructor(private readonly options: PublishPipelineOptions) {}

  /** Messages received and not yet acknowledged by the broker. */
  get pendingMessages(): number {
    return this.#queuedMessages + this.#inFlightMessages;
  }

  /** Commit time of the oldest transaction not yet acknowledged, if any. */
  get oldestCommitMs(): number | undefined {
    return (this.#inFlight[0] ?? this.#queue[0])?.commitTimeMs;
  }

  /** True when every transaction handed in has been acknowledged. */
  get idle(): boolean {
    return this.#queue.length === 0 && this.#inFlight.length === 0;
  }

  /** Queues a committed transaction (one without outbox rows still advances the confirmed LSN). */
  push(transaction: CommittedTransaction): void {
    if (this.#closed) return;
    this.#queue.push(transaction);
    this.#queuedMessages += transaction.messages.length;
    this.#schedule();
  }

  /** Stops retrying, lets the batch in flight finish, and drops what is queued (not acknowledged). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.wake();
    await this.#pumping;
    this.#queue.length = 0;
    this.#queuedMessages = 0;
  }

  #schedule(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#pump())
      .finally(() => {
        this.#pumping = undefined;
        if (this.#queue.length > 0) this.#schedule();
      });
  }

  /** Takes whole transactions up to the batch size (at least one, however large). */
  #take(): CommittedTransaction[] {
    const batch: CommittedTransaction[] = [];
    let count = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      if (batch.length > 0 && count + next.messages.length > this.options.batchSize) break;
      batch.push(next);
      count += next.messages.length;
      this.#queue.shift();
    }
    this.#queuedMessages -= count;
    this.#inFlight = batch;
    this.#inFlightMessages = count;
    return batch;
  }

  async #pump(): Promise<void> {
    while (this.#queue.length > 0 && !this.#closed) {
      const batch = this.#take();
      const messages: WireMessage[] = batch.flatMap((t) => t.messages);
      const acknowledged = await this.#publish(messages);
      this.#inFlight = [];
      this.#inFlightMessages = 0;
      if (!acknowledged) return;
      this.options.onAcknowledged(batch[batch.length - 1]!.endLsn);
    }
  }

  /** Publishes in chunks of the batch size; on failure retries from the first unacknowledged chunk. */
  async #publish(messages: readonly WireMessage[]): Promise<boolean> {
    const { broker, batchSize } = this.options;
    const started = performance.now();
    let failures = 0;
    for (let from = 0; from < messages.length; ) {
      try {
        await broker.publish(messages.slice(from, from + batchSize));
        from += batchSize;
        failures = 0;
      } catch (error) {
        if (this.#closed) return false;
        failures++;
        const retryInMs = Math.min(5000, 50 * 2 ** Math.min(failures, 7));
        this.options.onFailed?.(error, retryInMs);
        await this.#closing.wait(retryInMs);
        if (this.#closed) return false;
      }
    }
    if (messages.length > 0) this.options.onPublished?.(messages.length, performance.now() - started);
    return true;
  }
}
