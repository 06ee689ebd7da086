import type { WireMessage } from '@ferry/core';
import pg from 'pg';

/** A row of the member's fetch: a message of one of its partitions. */
export interface MessageRow {
  partition: number;
  seq: string;
  message_id: string;
  partition_key: string;
  headers: Record<string, string>;
  body: string;
}

/** A message fetched from a partition, waiting for or in the handler. */
export interface PartitionItem {
  readonly worker: PartitionWorker;
  readonly seq: bigint;
  readonly message: WireMessage;
  /** Handed out carefully: times it was handed out before by consumers that then stopped. */
  readonly abandoned?: number;
}

/** What a partition worker needs from its member. */
export interface PartitionWorkerHost {
  readonly pool: pg.Pool;
  readonly channel: string;
  readonly group: string;
  readonly memberId: string;
  readonly windowSize: number;
  /** Offsets are written at most this often per partition; a crash redelivers at most that much. */
  readonly commitIntervalMs: number;
  dispatch(item: PartitionItem): void;
  /** Asks the member to fetch for this worker; the member fetches for all its workers at once. */
  requestFetch(worker: PartitionWorker): void;
  /** Called when the worker finds it no longer owns its partition. */
  lost(worker: PartitionWorker): void;
  /** Messages of `partition` still to hand out carefully (see {@link PartitionWorker}). */
  careful(partition: number): number;
  /** One of them was handled and its offset committed. */
  handledCarefully(partition: number): void;
}

/**
 * Records, before a message is handed out carefully, that it is being handed out (fenced by the
 * lease): the count grows each time the same message is handed out again, so a message that
 * kills its consumer comes back with a count the consumer dead-letters at. One statement, its own
 * transaction: it has committed before the handler runs.
 */
const HAND_OUT_SQL = `
  UPDATE ferry_broker.offsets
     SET suspect_handouts = CASE WHEN suspect_seq = $5 THEN suspect_handouts + 1 ELSE 1 END,
         suspect_seq = $5
   WHERE channel = $1 AND group_name = $2 AND partition = $3 AND owner = $4
  RETURNING suspect_handouts`;

/**
 * Consumes one partition of a channel for a group while this member holds its lease: fetches
 * a window of messages past the committed offset, hands them to the member's dispatcher, and
 * commits the offset up to the longest run of settled messages. The commit is fenced by the
 * lease (`owner = member`), so a member that lost the partition cannot move its offset.
 *
 * After a takeover from a member that stopped without giving the partition back (it crashed, or
 * lost its lease), the messages that member may have had in flight are handed out *carefully*:
 * one at a time, each recorded as handed out before its handler runs and its offset committed
 * before the next. If one of them kills the process again, the next owner finds it first in line
 * with its count raised, and passes that count on (`Delivery.abandoned`); the consumer
 * dead-letters it at `maxAbandoned` rather than crash for ever, and the messages behind it flow.
 */
export class PartitionWorker {
  /** Seqs fetched and not yet committed, in order. */
  readonly #outstanding: bigint[] = [];
  readonly #settled = new Set<bigint>();
  #cursor: bigint;
  #committed: bigint;
  /** The last fetch filled the window: more may be waiting, so settling makes room to fetch. */
  #backlog = true;
  #commitTimer: NodeJS.Timeout | undefined;
  #commitChain: Promise<void> = Promise.resolve();
  #inFlight = 0;
  /** A careful commit in flight: the next careful hand-out waits for it. */
  #committingCarefully = false;
  #idle: Array<() => void> = [];
  /** Set when stopping or when the lease is gone: queued items are dropped, not handled. */
  abandoned = false;
  /** Local deadline of the lease (monotonic ms); past it the worker hands out nothing. */
  leaseDeadline: number;

  constructor(
    private readonly host: PartitionWorkerHost,
    readonly partition: number,
    committedSeq: bigint,
    leaseDeadline: number,
  ) {
    this.#cursor = committedSeq;
    this.#committed = committedSeq;
    this.leaseDeadline = leaseDeadline;
  }

  /** Whether items of this worker may still be handed to the handler. */
  get usable(): boolean {
    return !this.abandoned && performance.now() < this.leaseDeadline;
  }

  /** Fetches more messages if the window has room (through the member); safe to call often. */
  fetch(): void {
    if (!this.abandoned) this.host.requestFetch(this);
  }

  /** What the member's next fetch should ask for this partition, or nothing. */
  fetchRequest(): { readonly partition: number; readonly after: bigint; readonly room: number } | undefined {
    if (!this.usable) return undefined;
    if (this.host.careful(this.partition) > 0) {
      const idle = this.#inFlight === 0 && !this.#committingCarefully;
      return idle ? { partition: this.partition, after: this.#cursor, room: 1 } : undefined;
    }
    const room = this.host.windowSize - this.#inFlight;
    if (room <= 0) return undefined;
    return { partition: this.partition, after: this.#cursor, room };
  }

  /**
   * Takes the rows the member fetched for `request` (in seq order) and hands them out. Rows of a
   * worker that has since been abandoned are dropped: they will be fetched again.
   */
  accept(request: { readonly after: bigint; readonly room: number }, rows: readonly MessageRow[]): void {
    if (this.abandoned || request.after !== this.#cursor) return;
    if (request.room === 1 && rows.length === 1 && this.host.careful(this.partition) > 0) {
      this.#handOutCarefully(rows[0]!);
      return;
    }
    for (const row of rows) {
      const seq = BigInt(row.seq);
      this.#cursor = seq;
      this.#outstanding.push(seq);
      this.#inFlight++;
      this.host.dispatch({ worker: this, seq, message: this.#wireOf(row) });
    }
    this.#backlog = rows.length === request.room;
    if (this.#backlog) this.fetch();
  }

  #wireOf(row: MessageRow): WireMessage {
    return {
      id: row.message_id,
      channel: this.host.channel,
      partitionKey: row.partition_key,
      headers: row.headers,
      body: row.body,
    };
  }

  /** Records the hand-out, then dispatches with the count of earlier ones that were abandoned. */
  #handOutCarefully(row: MessageRow): void {
    const seq = BigInt(row.seq);
    this.#cursor = seq;
    this.#outstanding.push(seq);
    this.#inFlight++;
    this.#backlog = true;
    const { host } = this;
    host.pool
      .query<{ suspect_handouts: number }>(HAND_OUT_SQL, [
        host.channel,
        host.group,
        this.partition,
        host.memberId,
        row.seq,
      ])
      .then(({ rows: recorded }) => {
        if (recorded.length === 0 || !this.usable) return this.dropped(); // the lease is gone
        host.dispatch({
          worker: this,
          seq,
          message: this.#wireOf(row),
          abandoned: recorded[0]!.suspect_handouts - 1,
        });
      })
      .catch(() => this.dropped()); // not recorded, so not handed out; a new worker fetches it again
  }

  /** The handler settled the item: it may be committed. */
  settled(seq: bigint): void {
    this.#settled.add(seq);
    this.#release();
    let advanced = false;
    while (this.#outstanding.length > 0 && this.#settled.has(this.#outstanding[0]!)) {
      const head = this.#outstanding.shift()!;
      this.#settled.delete(head);
      this.#committed = head;
      advanced = true;
    }
    if (advanced && this.host.careful(this.partition) > 0) {
      // Careful: the offset is committed before the next message is handed out.
      this.#committingCarefully = true;
      void this.commit().then(() => {
        this.#committingCarefully = false;
        if (!this.abandoned) this.host.handledCarefully(this.partition);
        this.fetch();
      });
      return;
    }
    if (advanced && !this.#commitTimer) {
      this.#commitTimer = setTimeout(() => {
        this.#commitTimer = undefined;
        void this.commit();
      }, this.host.commitIntervalMs);
    }
    // New messages announce themselves (NOTIFY); fetch on settling only to drain a backlog.
    if (this.#backlog && this.#inFlight <= this.host.windowSize / 2) this.fetch();
  }

  /**
   * The item was dropped unsettled (worker stopping, or its lease in doubt): it must be delivered
   * again, so this worker, whose cursor has moved past it, is retired. While the member still holds
   * the partition its next heartbeat starts a new worker from the committed offset.
   */
  dropped(): void {
    if (!this.abandoned) {
      this.abandoned = true;
      this.host.lost(this);
    }
    this.#release();
  }

  #release(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Writes the committed offset, fenced by the lease. */
  commit(): Promise<void> {
    const target = this.#committed;
    this.#commitChain = this.#commitChain.then(async () => {
      try {
        // An offset is a hint, not data: a commit lost in a server crash only redelivers
        // messages, which the inbox absorbs. So it does not wait for the WAL flush.
        const results = (await this.host.pool.query(
          `BEGIN; SET LOCAL synchronous_commit = off;
           UPDATE ferry_broker.offsets SET committed_seq = GREATEST(committed_seq, ${target.toString()})
            WHERE channel = ${pg.escapeLiteral(this.host.channel)} AND group_name = ${pg.escapeLiteral(this.host.group)}
              AND partition = ${this.partition} AND owner = ${pg.escapeLiteral(this.host.memberId)};
           COMMIT`,
        )) as unknown as pg.QueryResult[];
        const rowCount = results[2]?.rowCount;
        if (rowCount === 0 && !this.abandoned) {
          this.abandoned = true;
          this.host.lost(this);
        }
      } catch {
        // Not committed: after a crash these messages are delivered again, and the inbox absorbs them.
      }
    });
    return this.#commitChain;
  }

  /** Stops handing out messages, waits for the handler on those in flight, commits. */
  async stop(): Promise<void> {
    this.abandoned = true;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    await this.commit();
  }
}
