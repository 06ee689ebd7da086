import type { Broker } from '@ferry/core';
import type pg from 'pg';
import { parseLsn } from './lsn.js';
import { deleteInBatches, PURGE_BATCH, purgePublished, withPurgeLock } from './purge.js';
import type { MessageRelay } from './relay-events.js';
import {
  assertLogicalWal,
  assertSlotName,
  defaultSlotName,
  ensurePublication,
  type OutboxTable,
  readSlot,
  slotLagBytes,
} from './replication-slot.js';
import { SlotLock } from './slot-lock.js';
import { createSlotWithBacklog } from './slot-setup.js';
import type { TailingRelayEvent, TailingRelayLag } from './tailing-relay-events.js';
import { TailingSession } from './tailing-session.js';
import { WakeSignal } from './wake-signal.js';

/** Options of {@link TailingRelay}. */
export interface TailingRelayOptions {
  /** Pool on the service's database (the one whose `ferry.outbox` is relayed). */
  readonly pool: pg.Pool;
  /** Connection string of the same database; its user needs the REPLICATION attribute. */
  readonly connectionString: string;
  readonly broker: Broker;
  /** Name in logs and metrics (default `tailing`). */
  readonly name?: string;
  /** Replication slot, one per service (default `ferry_outbox_<database>`). */
  readonly slotName?: string;
  /** Publication of the outbox's inserts, created if missing (default `ferry_outbox`). */
  readonly publicationName?: string;
  /**
   * What a newly created slot does with rows committed before it: `unpublished` (default)
   * publishes those the polling relay has not marked published, so that switching relays or a
   * first start loses nothing; `none` skips them.
   */
  readonly initialBacklog?: 'unpublished' | 'none';
  /** Most messages per broker publish (default 500). */
  readonly batchSize?: number;
  /** Stop reading WAL while this many messages wait for the broker (default 20 × batchSize). */
  readonly maxPendingMessages?: number;
  /** How often a standby asks for the slot, in ms (default 1,000). */
  readonly standbyRetryMs?: number;
  /**
   * How long the new holder of the slot lock waits for a previous holder's stream to end
   * before ending it, in ms (default 10,000).
   */
  readonly takeoverGraceMs?: number;
  /** Send the server a status update at least this often, in ms (default 10,000). */
  readonly statusIntervalMs?: number;
  /** Measure the slot's lag this often, in ms (default 10,000). */
  readonly lagCheckIntervalMs?: number;
  /** Warn (a `slot-lag-warning` event) when the slot holds back more WAL than this (default 256 MiB). */
  readonly lagWarnBytes?: number;
  /** Keep outbox rows this long before purging them, in ms (default 24 h). */
  readonly retentionMs?: number;
  /** How often to purge, in ms (default 60 s). */
  readonly purgeIntervalMs?: number;
  readonly onEvent?: (event: TailingRelayEvent) => void;
}

const OUTBOX: OutboxTable = { schema: 'ferry', name: 'outbox' };
const PURGE_LOCK = 0x46_52_51; // "FRQ"

/**
 * The transaction log tailing relay: reads outbox inserts from the WAL through logical
 * replication (pgoutput, an insert-only publication on `ferry.outbox`), publishes them in
 * commit order, and confirms a position to the server only once the broker acknowledged
 * everything up to it. One instance per slot streams; the others stand by and take over
 * when it dies. After a restart it resumes from the slot's confirmed position, so nothing is
 * lost; what was published but not yet confirmed is published again, and consumers' inbox
 * absorbs the duplicates. It never updates outbox rows; a purge deletes them after the retention.
 *
 * @example
 * const relay = new TailingRelay({ pool, connectionString, broker });
 * await relay.start(); // throws, naming wal_level, unless the server decodes WAL
 */
export class TailingRelay implements MessageRelay {
  readonly name: string;
  #slot: string | undefined;
  #running = false;
  #session: TailingSession | undefined;
  #loop: Promise<void> | undefined;
  #purgeTimer: NodeJS.Timeout | undefined;
  #lagTimer: NodeJS.Timeout | undefined;
  #wake = new WakeSignal();
  #stopRequested: Promise<void> = Promise.resolve();
  #requestStop: () => void = () => {};

  constructor(private readonly options: TailingRelayOptions) {
    this.name = options.name ?? 'tailing';
    if (options.slotName !== undefined) assertSlotName(options.slotName);
  }

  isRunning(): boolean {
    return this.#running;
  }

  /** True while this instance holds the slot and streams from it (false while standing by). */
  isActive(): boolean {
    return this.#session !== undefined;
  }

  /** The slot's name: the configured one, or the one derived from the database name. */
  async slotName(): Promise<string> {
    this.#slot ??= this.options.slotName ?? defaultSlotName(await this.#database());
    return this.#slot;
  }

  /**
   * Checks the server (wal_level), creates the publication if missing, and starts taking the
   * slot in the background: this instance streams, or stands by while another one does.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    await assertLogicalWal(this.options.pool);
    const slot = await this.slotName();
    await ensurePublication(this.options.pool, this.#publication, OUTBOX);
    this.#running = true;
    this.#wake = new WakeSignal();
    this.#stopRequested = new Promise((resolve) => {
      this.#requestStop = resolve;
    });
    this.#loop = this.#run(slot);
    this.#purgeTimer = setInterval(
      () => void this.purge().catch(() => {}),
      this.options.purgeIntervalMs ?? 60_000,
    );
    this.#purgeTimer.unref();
    this.#lagTimer = setInterval(() => void this.#reportLag(slot), this.options.lagCheckIntervalMs ?? 10_000);
    this.#lagTimer.unref();
  }

  /** Finishes the batch in flight and confirms it, then releases the slot. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#purgeTimer);
    clearInterval(this.#lagTimer);
    this.#requestStop();
    this.#wake.wake();
    await this.#loop;
  }

  /**
   * Messages this instance holds unacknowledged (and the age of the oldest), and the bytes of
   * WAL the slot holds back.
   */
  async lag(): Promise<TailingRelayLag> {
    const bytes = await slotLagBytes(this.options.pool, await this.slotName());
    const oldest = this.#session?.oldestCommitMs;
    return {
      messages: this.#session?.pendingMessages ?? 0,
      oldestMs: oldest === undefined ? 0 : Math.max(0, Date.now() - oldest),
      bytes,
    };
  }

  /**
   * Deletes outbox rows older than the retention; one relay purges at a time. Decoding reads
   * the WAL, which holds each inserted row whole, so deleting a row never loses an insert the
   * slot has yet to stream.
   */
  async purge(): Promise<number> {
    const retentionMs = this.options.retentionMs ?? 24 * 3600_000;
    const total = await withPurgeLock(this.options.pool, PURGE_LOCK, async (client) => {
      // This relay never marks rows published, so all its rows are in the outbox_unpublished index,
      // in position order. created_at grows with position, but for stragglers of long
      // transactions: find the first row to keep by walking that index, delete below it.
      const cutoff = `now() - make_interval(secs => $1::float8 / 1000)`;
      const first = await client.query<{ position: string | null }>(
        `SELECT (SELECT position FROM ferry.outbox
                  WHERE published_at IS NULL AND created_at >= ${cutoff} ORDER BY position LIMIT 1) AS position`,
        [retentionMs],
      );
      const below = first.rows[0]?.position ?? '9223372036854775807';
      const unmarked = await deleteInBatches(
        client,
        `DELETE FROM ferry.outbox WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM ferry.outbox
            WHERE published_at IS NULL AND position < $2::bigint AND created_at < ${cutoff}
            ORDER BY position LIMIT ${PURGE_BATCH}))`,
        [retentionMs, below],
      );
      // Rows a polling relay marked published, if one relayed this outbox before.
      return unmarked + (await purgePublished(client, retentionMs));
    });
    if (total > 0) this.options.onEvent?.({ kind: 'purged', relay: this.name, count: total });
    return total;
  }

  get #publication(): string {
    return this.options.publicationName ?? 'ferry_outbox';
  }

  async #database(): Promise<string> {
    const { rows } = await this.options.pool.query<{ db: string }>('SELECT current_database() AS db');
    return rows[0]?.db ?? '';
  }

  #emit(event: TailingRelayEvent): void {
    this.options.onEvent?.(event);
  }

  async #run(slot: string): Promise<void> {
    const lock = new SlotLock(this.options.connectionString, slot);
    let failures = 0;
    let standingBy = false;
    while (this.#running) {
      try {
        if (!(await lock.tryAcquire())) {
          if (!standingBy) this.#emit({ kind: 'standby', relay: this.name, slot });
          standingBy = true;
          await this.#wake.wait(this.options.standbyRetryMs ?? 1000);
          continue;
        }
        standingBy = false;
        await this.#stream(slot, lock, () => {
          failures = 0;
        });
      } catch (error) {
        await lock.release();
        if (!this.#running) break;
        failures++;
        const retryInMs = Math.min(5000, 100 * 2 ** Math.min(failures, 6));
        this.#emit({ kind: 'stream-failed', relay: this.name, slot, error, retryInMs });
        await this.#wake.wait(retryInMs);
      }
    }
    await lock.release();
  }

  /** Streams while this instance holds the lock; returns on stop, throws when the stream ends. */
  async #stream(slot: string, lock: SlotLock, onActive: () => void): Promise<void> {
    const { pool } = this.options;
    const batchSize = this.options.batchSize ?? 500;
    let state = await readSlot(pool, slot);
    if (!state) {
      const backlog = await createSlotWithBacklog({ ...this.options, slot, table: OUTBOX, batchSize });
      this.#emit({ kind: 'slot-created', relay: this.name, slot, backlog });
      state = await readSlot(pool, slot);
    }
    if (!state || state.database !== (await this.#database()) || state.plugin !== 'pgoutput')
      throw new Error(
        `replication slot "${slot}" belongs to database ${state?.database} with plugin ${state?.plugin}; set slotName to a slot of this database`,
      );
    const confirmed = await this.#awaitSlotFree(slot);
    if (!this.#running) return;
    const session = await TailingSession.open({
      connectionString: this.options.connectionString,
      slot,
      publication: this.#publication,
      table: OUTBOX,
      broker: this.options.broker,
      batchSize,
      maxPendingMessages: this.options.maxPendingMessages ?? 20 * batchSize,
      statusIntervalMs: this.options.statusIntervalMs ?? 10_000,
      confirmedLsn: parseLsn(confirmed),
      relay: this.name,
      onEvent: (event) => this.#emit(event),
    });
    this.#session = session;
    onActive();
    this.#emit({ kind: 'active', relay: this.name, slot });
    try {
      const ended = await Promise.race([
        session.ended,
        lock.lost.then(() => new Error('the connection holding the slot lock was lost')),
        this.#stopRequested.then(() => undefined),
      ]);
      if (ended) throw ended;
    } finally {
      this.#session = undefined;
      await session.close();
    }
  }

  /**
   * Waits until no session streams from the slot (one of a tailer that lost its lock may still
   * run for a moment), ending it after the grace period; resolves to the confirmed position.
   */
  async #awaitSlotFree(slot: string): Promise<string> {
    const deadline = Date.now() + (this.options.takeoverGraceMs ?? 10_000);
    for (;;) {
      const state = await readSlot(this.options.pool, slot);
      if (!state?.confirmedFlushLsn) throw new Error(`replication slot "${slot}" vanished`);
      if (state.activePid === null || !this.#running) return state.confirmedFlushLsn;
      if (Date.now() >= deadline) {
        await this.options.pool.query('SELECT pg_terminate_backend($1)', [state.activePid]);
        this.#emit({ kind: 'takeover', relay: this.name, slot, terminatedPid: state.activePid });
      }
      await this.#wake.wait(100);
    }
  }

  async #reportLag(slot: string): Promise<void> {
    if (!this.#session) return;
    try {
      const lag = await this.lag();
      this.#emit({ kind: 'slot-lag', relay: this.name, slot, bytes: lag.bytes, messages: lag.messages });
      const thresholdBytes = this.options.lagWarnBytes ?? 256 * 1024 * 1024;
      if (lag.bytes > thresholdBytes)
        this.#emit({ kind: 'slot-lag-warning', relay: this.name, slot, bytes: lag.bytes, thresholdBytes });
    } catch {
      // The next check reports; a failing database shows in the stream's own events.
    }
  }
}
