import type { Broker, WireMessage } from '@ferry/core';
import type pg from 'pg';
import { withRollback } from '../database.js';
import { thenCommit } from '../leading-then.js';
import { OUTBOX_NOTIFY_CHANNEL, type OutboxRow, wireOf } from '../outbox/postgres-outbox.js';
import { submit } from '../pipelined.js';
import { PgListener } from './listener.js';
import { purgePublished, withPurgeLock } from './purge.js';
import type { MessageRelay, RelayEvent, RelayLag } from './relay-events.js';
import { WakeSignal } from './wake-signal.js';

/** Options of {@link PollingRelay}. */
export interface PollingRelayOptions {
  /** Pool on the service's database (the one whose `ferry.outbox` is relayed). */
  readonly pool: pg.Pool;
  /** Connection string of the same database, for the LISTEN connection. */
  readonly connectionString: string;
  readonly broker: Broker;
  /** Name in logs and metrics (default `polling`). */
  readonly name?: string;
  /** Rows per batch (default 500). */
  readonly batchSize?: number;
  /** Poll even without a notification this often, in ms (default 1,000). */
  readonly pollIntervalMs?: number;
  /**
   * Once idle, look again for rows this soon, in ms (default 50): a producer whose statement read
   * the relay's state just before it announced that it waits, and committed just after its last
   * look, sent no notification; this finds its row then rather than at the next poll.
   */
  readonly secondLookMs?: number;
  /** Keep published rows this long before purging them, in ms (default 24 h). */
  readonly retentionMs?: number;
  /** How often to purge, in ms (default 60 s). */
  readonly purgeIntervalMs?: number;
  readonly onEvent?: (event: RelayEvent) => void;
}

/** Advisory-lock namespace for partition keys being relayed (first key of the two-int form). */
const KEY_LOCK_NAMESPACE = 0x46_52_4c; // "FRL"
const PURGE_LOCK = 0x46_52_50; // "FRP"

/*
 * Several relays may run at once. Claiming rows with FOR UPDATE SKIP LOCKED alone would let a
 * second relay publish a key's later row while the first still holds an earlier one, so each
 * relay first takes a transaction-scoped advisory lock on every key it will publish (keys of
 * the oldest unpublished rows that no other relay holds), and only then, in a new statement
 * with a fresh snapshot, reads those keys' unpublished rows in order. A relay that held a key
 * before has committed, so its rows are seen as published: per-key order survives any number
 * of relays. The keys pass from the first statement to the second in a transaction-local
 * setting, so that both go in one request (decision 0004's addendum).
 */
const lockKeysSql = (batchSize: number) => `
  SELECT set_config('ferry.relay_keys', COALESCE(array_agg(partition_key)::text, '{}'), true)
    FROM (
      SELECT partition_key FROM (
        SELECT DISTINCT partition_key FROM (
          SELECT partition_key FROM ferry.outbox WHERE published_at IS NULL ORDER BY position LIMIT ${batchSize}
        ) AS oldest
      ) AS candidate_keys
      WHERE pg_try_advisory_xact_lock(${KEY_LOCK_NAMESPACE}, hashtext(partition_key))
    ) AS locked`;

const claimSql = (batchSize: number) => `
  SELECT position, message_id, channel, partition_key, headers, body
    FROM ferry.outbox
   WHERE published_at IS NULL AND partition_key = ANY(current_setting('ferry.relay_keys')::text[])
   ORDER BY position
   LIMIT ${batchSize}
   FOR UPDATE`;

const BEGIN_BATCH = 'BEGIN; SET LOCAL synchronous_commit = off';
const PENDING_SQL = 'SELECT EXISTS (SELECT 1 FROM ferry.outbox WHERE published_at IS NULL) AS pending';
const WITHDRAW_WAITING =
  'BEGIN; SET LOCAL synchronous_commit = off; UPDATE ferry.relay_state SET waiting_until = NULL WHERE id = 1; COMMIT';

/**
 * The polling publisher: reads committed outbox rows in batches, publishes them, and marks them
 * published only after the broker acknowledged them. A NOTIFY sent by each outbox insert wakes
 * it, so a message leaves within milliseconds; the poll interval is only a fallback. A failure
 * rolls the batch back and retries with backoff; a crash leaves the rows unpublished for the
 * next relay. Published rows are purged after the retention.
 */
export class PollingRelay implements MessageRelay {
  readonly name: string;
  readonly #wake = new WakeSignal();
  readonly #stopped = new WakeSignal();
  readonly #listener: PgListener;
  #running = false;
  #loop: Promise<void> | undefined;
  #purgeTimer: NodeJS.Timeout | undefined;
  /** Whether this relay announced it waits, so producers notify, and has not withdrawn it yet. */
  #waitingAnnounced = false;

  constructor(private readonly options: PollingRelayOptions) {
    this.name = options.name ?? 'polling';
    this.#listener = new PgListener(options.connectionString, OUTBOX_NOTIFY_CHANNEL, () => this.#wake.wake());
  }

  isRunning(): boolean {
    return this.#running;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    // Running only once listening: a start that fails can be retried.
    await this.#listener.start();
    this.#running = true;
    this.#loop = this.#run();
    const purgeEvery = this.options.purgeIntervalMs ?? 60_000;
    this.#purgeTimer = setInterval(() => void this.purge().catch(() => {}), purgeEvery);
    this.#purgeTimer.unref();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#purgeTimer);
    this.#wake.wake();
    this.#stopped.wake();
    await this.#loop;
    await this.#listener.stop();
    if (this.#waitingAnnounced) {
      this.#waitingAnnounced = false;
      await this.options.pool.query(WITHDRAW_WAITING).catch(() => {});
    }
  }

  /** Relays one batch; resolves to the number of messages published. Exposed for tests and tools. */
  async relayBatch(): Promise<number> {
    return withRollback(this.options.pool, async (client) => {
      // The mark is bookkeeping: if a server crash loses it, the rows are published again and
      // consumers' inboxes absorb the duplicates. So its commit does not wait for the WAL flush.
      // After an idle wait, the announcement is withdrawn in the same request (its own transaction).
      // The key locks and the claim in the same request (simple protocol; the batch size is an
      // integer we own), each statement with its own snapshot.
      const batchSize = Math.trunc(this.options.batchSize ?? 500);
      const results = (await client.query(
        `${this.#waitingAnnounced ? `${WITHDRAW_WAITING}; ` : ''}${BEGIN_BATCH}; ${lockKeysSql(batchSize)}; ${claimSql(batchSize)}`,
      )) as unknown as pg.QueryResult<OutboxRow>[];
      this.#waitingAnnounced = false;
      const { rows } = results.at(-1)!;
      if (rows.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      const started = performance.now();
      const messages: WireMessage[] = rows.map(wireOf);
      await this.options.broker.publish(messages);
      // The mark and the COMMIT in one request.
      await submit(
        client,
        thenCommit({
          name: 'ferry_relay_mark',
          // Found through outbox_unpublished, the index the claim read them by.
          text: 'UPDATE ferry.outbox SET published_at = now() WHERE position = ANY($1::bigint[]) AND published_at IS NULL',
          values: [`{${rows.map((r) => r.position).join(',')}}`],
        }),
      );
      this.options.onEvent?.({
        kind: 'published',
        relay: this.name,
        count: rows.length,
        durationMs: performance.now() - started,
      });
      return rows.length;
    });
  }

  /** Deletes published rows older than the retention; one relay purges at a time. */
  async purge(): Promise<number> {
    const retentionMs = this.options.retentionMs ?? 24 * 3600_000;
    const total = await withPurgeLock(this.options.pool, PURGE_LOCK, (client) =>
      purgePublished(client, retentionMs),
    );
    if (total > 0) this.options.onEvent?.({ kind: 'purged', relay: this.name, count: total });
    return total;
  }

  async lag(): Promise<RelayLag> {
    const { rows } = await this.options.pool.query<{ messages: string; oldest_ms: number | null }>(
      `SELECT count(*) AS messages, (extract(epoch FROM now() - min(created_at)) * 1000)::float8 AS oldest_ms
         FROM ferry.outbox WHERE published_at IS NULL`,
    );
    return { messages: Number(rows[0]?.messages ?? 0), oldestMs: Math.max(0, rows[0]?.oldest_ms ?? 0) };
  }

  /**
   * Waits for work: announces that a relay is waiting (so producers notify) and, in the same
   * request but a new statement with a fresh snapshot, checks once more for rows committed before
   * producers could see the announcement; then sleeps until a notification or the poll interval,
   * looking once more after `secondLookMs` for a row whose producer straddled the announcement.
   * The announcement is written with synchronous_commit off: it is a hint, not data. The next
   * batch withdraws it.
   */
  async #idle(): Promise<void> {
    const pollMs = this.options.pollIntervalMs ?? 1000;
    const results = (await this.options.pool.query(
      `BEGIN; SET LOCAL synchronous_commit = off;
       UPDATE ferry.relay_state SET waiting_until = clock_timestamp() + make_interval(secs => ${(pollMs * 2) / 1000}) WHERE id = 1;
       COMMIT;
       ${PENDING_SQL}`,
    )) as unknown as pg.QueryResult<{ pending: boolean }>[];
    this.#waitingAnnounced = true;
    if (results[4]?.rows[0]?.pending) return;
    const secondLookMs = Math.min(pollMs, this.options.secondLookMs ?? 50);
    if ((await this.#wake.wait(secondLookMs)) || !this.#running) return;
    const { rows } = await this.options.pool.query<{ pending: boolean }>(PENDING_SQL);
    if (!rows[0]?.pending) await this.#wake.wait(pollMs - secondLookMs);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      try {
        const published = await this.relayBatch();
        failures = 0;
        // Go again at once while batches find work: rows committed meanwhile are found by the next
        // batch's own query. Only an empty batch makes the relay announce that it waits (which
        // makes producers NOTIFY, and NOTIFY serialises commits).
        if (published === 0) await this.#idle();
      } catch (error) {
        failures++;
        const retryInMs = Math.min(5000, 50 * 2 ** Math.min(failures, 7));
        this.options.onEvent?.({ kind: 'publish-failed', relay: this.name, error, retryInMs });
        // Back off on a timer that only stopping cuts short: new notifications must not hurry a retry.
        await this.#stopped.wait(retryInMs);
      }
    }
  }
}
