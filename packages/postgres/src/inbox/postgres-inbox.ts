import { type Inbox, type InboxResult, positiveInteger } from '@ferry/core';
import type pg from 'pg';
import { checkout, tryRollback } from '../database.js';
import { deferringTransaction } from '../outbox/deferred-appends.js';
import { relayWakeStateOf } from '../outbox/relay-wake-state.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Options of {@link PostgresInbox}. */
export interface PostgresInboxOptions {
  /**
   * Most messages handled in one transaction (default 32; 1 gives every message a transaction
   * of its own). Messages share a transaction only when they wait for one: see the class.
   */
  readonly maxBatchSize?: number;
  /** Inbox transactions open at once while their handlers are quick (default 1). */
  readonly transactions?: number;
  /**
   * How long a transaction's handlers may run before it no longer holds back the messages
   * waiting behind it (default 10 ms): another transaction then opens. Batches are also sized
   * so that their handlers take about this long.
   */
  readonly slowHandlerMs?: number;
  /** Inbox transactions open at once in all, slow ones included (default 16), each on a pool connection. */
  readonly maxTransactions?: number;
}

/** One call of `handle`, waiting for its transaction. */
interface Pending {
  readonly group: string;
  readonly messageId: string;
  readonly work: (tx: pg.PoolClient) => Promise<void>;
  readonly resolve: (result: InboxResult) => void;
  readonly reject: (error: unknown) => void;
  /** Set after a batch failed as a whole: the message then gets a transaction of its own. */
  alone?: boolean;
}

/** An open inbox transaction. */
interface Lane {
  /** When its handlers began to run (performance.now()), while they run. */
  handlersStartedAt: number | undefined;
  /** Sending its COMMIT and waiting for the WAL flush: the next batch may begin meanwhile. */
  committing: boolean;
}

/** One message of one group, as a map key. */
const keyOf = (group: string, messageId: string) => `${group}\u0000${messageId}`;

/**
 * The idempotent consumer's inbox on PostgreSQL. A message is handled in a transaction that first
 * inserts (group, message id) into `ferry.inbox`; if the row exists the message is a duplicate
 * and none of its work runs. A concurrent duplicate waits on the row's lock and then sees it.
 *
 * Group commit (decision 0012). While handlers are quick, at most `transactions` inbox
 * transactions are open at once, not counting those already committing. A message that arrives while they are busy waits, and when one
 * finishes, every message waiting (up to `maxBatchSize`) goes into the next transaction
 * together: one request inserts all their inbox rows, their handlers run one after another on
 * that transaction, and one COMMIT makes all of their effects durable. An idle consumer thus
 * gives each message its own transaction; a busy one pays a BEGIN, an inbox request and a
 * COMMIT (with its wait for the disk) per batch, not per message. Handlers of one batch never
 * run at once: each sees the writes of those before it, as if they had committed.
 *
 * Slow handlers do not hold the others back: a transaction whose handlers have run longer than
 * `slowHandlerMs` stops counting against `transactions`, and another one opens for the messages
 * waiting, up to `maxTransactions` in all; and batches are sized from a moving average of how
 * long a handler takes, so that a batch's handlers take about `slowHandlerMs` (a 3 ms handler
 * shares a transaction with two others at most, a 20 ms one with none). Keys whose handlers wait on I/O therefore still run
 * concurrently, up to the consumer's concurrency. Messages of one partition key never share a
 * batch: the consumer hands over a key's next message only after the previous one's `handle`
 * has resolved, that is, committed.
 *
 * A handler that throws rolls the whole batch back: its message fails with the handler's error
 * (the consumer retries or dead-letters it, as ever), and the batch's other messages run again
 * in a later transaction, their rolled-back work redone from the start. If the transaction
 * itself fails (a lost connection, a COMMIT that rolled back because a handler swallowed a
 * failed statement's error), each of its messages runs again in a transaction of its own, so
 * that only the message at fault fails.
 */
export class PostgresInbox implements Inbox<pg.PoolClient> {
  readonly #pool: pg.Pool;
  readonly #maxBatchSize: number;
  readonly #transactions: number;
  readonly #slowHandlerMs: number;
  readonly #maxTransactions: number;
  readonly #waiting: Pending[] = [];
  readonly #lanes = new Set<Lane>();
  #recheck: ReturnType<typeof setTimeout> | undefined;
  /** How long a handler takes, a moving average (ms): batches are sized to `slowHandlerMs` of it. */
  #handlerMs = 0;

  constructor(pool: pg.Pool, options: PostgresInboxOptions = {}) {
    this.#pool = pool;
    this.#maxBatchSize = positiveInteger(options.maxBatchSize ?? 32, 'maxBatchSize');
    this.#transactions = positiveInteger(options.transactions ?? 1, 'transactions');
    this.#slowHandlerMs = positiveInteger(options.slowHandlerMs ?? 10, 'slowHandlerMs');
    this.#maxTransactions = Math.max(
      this.#transactions,
      positiveInteger(options.maxTransactions ?? 16, 'maxTransactions'),
    );
  }

  handle(group: string, messageId: string, work: (tx: pg.PoolClient) => Promise<void>): Promise<InboxResult> {
    if (!UUID.test(messageId)) return Promise.reject(new TypeError(`message id is not a UUID: ${messageId}`));
    return new Promise<InboxResult>((resolve, reject) => {
      this.#waiting.push({ group, messageId: messageId.toLowerCase(), work, resolve, reject });
      this.#startTransactions();
    });
  }

  /**
   * Opens transactions for the waiting messages while fewer than `transactions` quick ones are
   * open; if messages are left waiting, looks again once a handler may have become slow.
   */
  #startTransactions(): void {
    while (
      this.#waiting.length > 0 &&
      this.#lanes.size < this.#maxTransactions &&
      this.#quickLanes() < this.#transactions
    ) {
      const lane: Lane = { handlersStartedAt: undefined, committing: false };
      this.#lanes.add(lane);
      void this.#handleBatch(lane, this.#nextBatch()).finally(() => {
        this.#lanes.delete(lane);
        this.#startTransactions();
      });
    }
    if (this.#waiting.length > 0 && this.#lanes.size < this.#maxTransactions && !this.#recheck) {
      this.#recheck = setTimeout(() => {
        this.#recheck = undefined;
        this.#startTransactions();
      }, this.#untilSlow());
      this.#recheck.unref();
    }
  }

  /**
   * Open transactions that hold the waiting messages back: not yet committing, and whose
   * handlers have not been running for `slowHandlerMs` yet.
   */
  #quickLanes(): number {
    const now = performance.now();
    let quick = 0;
    for (const lane of this.#lanes) if (this.#quickFor(lane, now) > 0) quick++;
    return quick;
  }

  /** Milliseconds until the first open transaction's handlers will have run for `slowHandlerMs`. */
  #untilSlow(): number {
    const now = performance.now();
    let soonest = this.#slowHandlerMs;
    for (const lane of this.#lanes) {
      const left = this.#quickFor(lane, now);
      if (left > 0) soonest = Math.min(soonest, left);
    }
    return Math.max(1, Math.ceil(soonest));
  }

  /**
   * How much longer `lane` holds the waiting messages back: 0 once it is committing or its
   * handlers have run `slowHandlerMs`; `slowHandlerMs` before they begin.
   */
  #quickFor(lane: Lane, now: number): number {
    if (lane.committing) return 0;
    if (lane.handlersStartedAt === undefined) return this.#slowHandlerMs;
    return Math.max(0, lane.handlersStartedAt + this.#slowHandlerMs - now);
  }

  /**
   * Takes the next batch from the queue: the head alone if it must be, else up to
   * `maxBatchSize` messages, none there twice. A repeat of a message waits for a later
   * transaction, whose inbox insert then waits for this one's outcome.
   */
  #nextBatch(): Pending[] {
    if (this.#waiting[0]!.alone) return this.#waiting.splice(0, 1);
    const size = Math.max(
      1,
      Math.min(this.#maxBatchSize, Math.floor(this.#slowHandlerMs / Math.max(this.#handlerMs, 0.01))),
    );
    const batch: Pending[] = [];
    const keys = new Set<string>();
    const left: Pending[] = [];
    for (const pending of this.#waiting) {
      const key = keyOf(pending.group, pending.messageId);
      if (batch.length < size && !pending.alone && !keys.has(key)) {
        batch.push(pending);
        keys.add(key);
      } else left.push(pending);
    }
    this.#waiting.splice(0, this.#waiting.length, ...left);
    return batch;
  }

  async #handleBatch(lane: Lane, batch: Pending[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await checkout(this.#pool);
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    let broken = false;
    try {
      const fresh = await insertInboxRows(client, batch);
      const handled: Pending[] = [];
      const transaction = deferringTransaction(client, { begun: true, wake: relayWakeStateOf(this.#pool) });
      lane.handlersStartedAt = performance.now();
      for (let i = 0; i < batch.length; i++) {
        const pending = batch[i]!;
        if (!fresh[i]) continue;
        const started = performance.now();
        try {
          await pending.work(transaction.tx);
        } catch (error) {
          // The transaction may be aborted: roll all of it back; the failed message reports its
          // error, the others (before and after it) run again in a later transaction. A handler
          // that failed only because an earlier one left the transaction aborted is not at fault:
          // then each message runs again alone, as when COMMIT fails.
          broken = !(await tryRollback(client));
          const others = batch.filter((other, j) => other !== pending && fresh[j]);
          if (isAbortedTransaction(error) && others.length > 0) {
            for (const message of [pending, ...others]) message.alone = true;
            this.#retryLater(batch.filter((_, j) => fresh[j]));
          } else {
            pending.reject(error);
            this.#retryLater(others);
          }
          this.#resolveDuplicates(batch, fresh);
          return;
        }
        this.#handlerMs += (performance.now() - started - this.#handlerMs) * 0.1;
        handled.push(pending);
      }
      lane.handlersStartedAt = undefined;
      // The next batch need not wait for this one's WAL flush; the server flushes both together.
      lane.committing = true;
      this.#startTransactions();
      await transaction.commit();
      for (const pending of handled) pending.resolve('handled');
      this.#resolveDuplicates(batch, fresh);
    } catch (error) {
      broken = !(await tryRollback(client));
      if (batch.length === 1) batch[0]!.reject(error);
      else {
        // Which message made the transaction fail is unknown (a handler that caught a failed
        // statement's error makes COMMIT roll back): each runs again in a transaction of its own.
        for (const pending of batch) pending.alone = true;
        this.#retryLater(batch);
      }
    } finally {
      client.release(broken);
    }
  }

  #resolveDuplicates(batch: readonly Pending[], fresh: readonly boolean[]): void {
    for (let i = 0; i < batch.length; i++) if (!fresh[i]) batch[i]!.resolve('duplicate');
  }

  /** Puts messages of a rolled-back batch back at the head of the queue, in their order. */
  #retryLater(messages: Pending[]): void {
    this.#waiting.unshift(...messages);
  }
}

/**
 * BEGIN and the batch's inbox rows in one request (simple protocol: the group is escaped, the
 * ids are checked UUIDs), rows taken in (group, id) order so that two transactions inserting the
 * same rows lock them in the same order and cannot deadlock. Returns, per message, whether its
 * row is new (false: handled before, by a committed transaction).
 */
async function insertInboxRows(client: pg.PoolClient, batch: readonly Pending[]): Promise<boolean[]> {
  const rows = batch.map((p) => `(${client.escapeLiteral(p.group)}, '${p.messageId}'::uuid)`).join(', ');
  const results = (await client.query(
    `BEGIN; INSERT INTO ferry.inbox (consumer_group, message_id)
       SELECT g, id FROM (VALUES ${rows}) AS m(g, id) ORDER BY g, id
       ON CONFLICT DO NOTHING RETURNING consumer_group, message_id`,
  )) as unknown as pg.QueryResult<{ consumer_group: string; message_id: string }>[];
  const inserted = new Set(results[1]!.rows.map((r) => keyOf(r.consumer_group, r.message_id)));
  return batch.map((p) => inserted.has(keyOf(p.group, p.messageId)));
}

/** 25P02: a statement sent to a transaction that an earlier statement's failure aborted. */
function isAbortedTransaction(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === '25P02';
}
