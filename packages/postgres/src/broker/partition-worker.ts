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
}

/**
 * Consumes one partition of a channel for a group while this member holds its lease: fetches
 * a window of messages past the committed offset, hands them to the member's dispatcher, and
 * commits the offset up to the longest run of settled messages. The commit is fenced by the
 * lease (`owner = member`), so a member that lost the partition cannot move its offset.
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
    const room = this.host.windowSize - this.#inFlight;
    if (room <= 0 || !this.usable) return undefined;
    return { partition: this.partition, after: this.#cursor, room };
  }

  /**
   * Takes the rows the member fetched for `request` (in seq order) and hands them out. Rows of a
   * worker that has since been abandoned are dropped: they will be fetched again.
   */
  accept(request: { readonly after: bigint; readonly room: number }, rows: readonly MessageRow[]): void {
    if (this.abandoned || request.after !== this.#cursor) return;
    for (const row of rows) {
      const seq = BigInt(row.seq);
      this.#cursor = seq;
      this.#outstanding.push(seq);
      this.#inFlight++;
      this.host.dispatch({
        worker: this,
        seq,
        message: {
          id: row.message_id,
          channel: this.host.channel,
          partitionKey: row.partition_key,
          headers: row.headers,
          body: row.body,
        },
      });
    }
    this.#backlog = rows.length === request.room;
    if (this.#backlog) this.fetch();
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
