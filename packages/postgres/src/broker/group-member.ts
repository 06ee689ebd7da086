import { type DeliveryHandler, KeyedDispatcher, newMessageId, type Subscription } from '@ferry/core';
import type pg from 'pg';
import {
  type MessageRow,
  type PartitionItem,
  PartitionWorker,
  type PartitionWorkerHost,
} from './partition-worker.js';

/** Timing and sizing of a member; see {@link PostgresBrokerOptions}. */
export interface MemberSettings {
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly pollIntervalMs: number;
  readonly windowSize: number;
  readonly concurrency: number;
  readonly commitIntervalMs: number;
}

/** Messages past each asking partition's cursor, up to its room, in seq order per partition. */
const FETCH_SQL = `
  SELECT c.partition, m.seq, m.message_id, m.partition_key, m.headers, m.body
    FROM unnest($2::int[], $3::bigint[], $4::int[]) AS c(partition, after, room)
    CROSS JOIN LATERAL (
      SELECT seq, message_id, partition_key, headers, body FROM ferry_broker.messages
       WHERE channel = $1 AND partition = c.partition AND seq > c.after
       ORDER BY seq LIMIT c.room
    ) AS m
   ORDER BY c.partition, m.seq`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One member of a consumer group on one channel. It heartbeats, takes a fair share of the
 * channel's partitions by lease (ceil(partitions / live members)), gives back extras when others
 * join, and runs a {@link PartitionWorker} per partition it holds. Deliveries go through one
 * {@link KeyedDispatcher}: a key's messages run one at a time, in order, while other keys run
 * in parallel. A rejected delivery is retried in place, so later messages of its key wait.
 */
export class GroupMember implements PartitionWorkerHost, Subscription {
  readonly memberId = newMessageId();
  readonly #workers = new Map<number, PartitionWorker>();
  readonly #dispatcher: KeyedDispatcher<PartitionItem>;
  #timer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #closed = false;
  #ticking: Promise<void> = Promise.resolve();
  /** Workers waiting for the next fetch, and whether one runs. */
  readonly #wanted = new Set<PartitionWorker>();
  #fetching = false;
  /** Per partition taken over from a member that stopped: messages still to hand out carefully. */
  readonly #careful = new Map<number, number>();

  constructor(
    readonly pool: pg.Pool,
    readonly channel: string,
    readonly group: string,
    private readonly partitions: number,
    private readonly handler: DeliveryHandler,
    private readonly settings: MemberSettings,
    private readonly onClosed: (member: GroupMember) => void,
  ) {
    this.#dispatcher = new KeyedDispatcher(settings.concurrency, (item) => this.#deliver(item));
  }

  get windowSize(): number {
    return this.settings.windowSize;
  }

  get commitIntervalMs(): number {
    return this.settings.commitIntervalMs;
  }

  /** Joins the group: creates its offsets if new (starting at the oldest message), takes partitions. */
  async start(): Promise<void> {
    await this.pool.query(
      `INSERT INTO ferry_broker.offsets (channel, group_name, partition)
       SELECT $1, $2, p FROM generate_series(0, $3 - 1) AS p
       ON CONFLICT DO NOTHING`,
      [this.channel, this.group, this.partitions],
    );
    await this.#tick();
    this.#timer = setInterval(() => {
      this.#ticking = this.#ticking.then(() => this.#tick()).catch(() => {});
    }, this.settings.heartbeatMs);
    this.#poll = setInterval(() => this.wake(), this.settings.pollIntervalMs);
  }

  /** New messages may be there: the workers of `partitions` (default all) fetch. */
  wake(partitions?: readonly number[]): void {
    if (!partitions) {
      for (const worker of this.#workers.values()) worker.fetch();
      return;
    }
    for (const partition of partitions) this.#workers.get(partition)?.fetch();
  }

  dispatch(item: PartitionItem): void {
    this.#dispatcher.push(item.message.partitionKey, item);
  }

  requestFetch(worker: PartitionWorker): void {
    this.#wanted.add(worker);
    if (!this.#fetching) void this.#runFetches();
  }

  async #runFetches(): Promise<void> {
    this.#fetching = true;
    try {
      await this.#fetchWanted();
    } finally {
      this.#fetching = false;
    }
    // A worker that asked after the last round's query but before the flag fell.
    if (this.#wanted.size > 0) void this.#runFetches();
  }

  /**
   * One query fetches for every worker that asked, each from its cursor up to its window's room
   * (a lateral join over the partitions), so a publish that touches many partitions costs a member
   * one request, not one per partition. One fetch runs at a time; askers meanwhile wait for the next.
   */
  async #fetchWanted(): Promise<void> {
    while (this.#wanted.size > 0) {
      const asked = [...this.#wanted]
        .map((worker) => ({ worker, request: worker.fetchRequest() }))
        .filter((a): a is { worker: PartitionWorker; request: NonNullable<typeof a.request> } => !!a.request);
      this.#wanted.clear();
      if (asked.length === 0) return;
      let rows: MessageRow[];
      try {
        ({ rows } = await this.pool.query<MessageRow>({
          name: 'ferry_broker_fetch_many',
          text: FETCH_SQL,
          values: [
            this.channel,
            asked.map((a) => a.request.partition),
            asked.map((a) => a.request.after.toString()),
            asked.map((a) => a.request.room),
          ],
        }));
      } catch {
        return; // the next wake-up or poll tries again
      }
      const byPartition = new Map<number, MessageRow[]>();
      for (const row of rows) {
        const list = byPartition.get(row.partition);
        if (list) list.push(row);
        else byPartition.set(row.partition, [row]);
      }
      for (const { worker, request } of asked)
        worker.accept(request, byPartition.get(request.partition) ?? []);
    }
  }

  careful(partition: number): number {
    return this.#careful.get(partition) ?? 0;
  }

  handledCarefully(partition: number): void {
    const left = (this.#careful.get(partition) ?? 0) - 1;
    if (left > 0) this.#careful.set(partition, left);
    else this.#careful.delete(partition);
  }

  lost(worker: PartitionWorker): void {
    if (this.#workers.get(worker.partition) === worker) this.#workers.delete(worker.partition);
  }

  async #deliver(item: PartitionItem): Promise<void> {
    const { worker } = item;
    for (let deliveryCount = 1; ; deliveryCount++) {
      if (!worker.usable) return worker.dropped();
      try {
        await this.handler({ message: item.message, deliveryCount, abandoned: item.abandoned });
        return worker.settled(item.seq);
      } catch {
        // Retried in place so that later messages of the key keep waiting behind it.
        await sleep(Math.min(5000, 25 * 2 ** Math.min(deliveryCount, 8)));
      }
    }
  }

  /** Heartbeat, lease renewal and rebalancing; runs every `heartbeatMs`. */
  async #tick(): Promise<void> {
    if (this.#closed) return;
    const leaseSeconds = this.settings.leaseMs / 1000;
    const started = performance.now();
    await this.pool.query(
      `INSERT INTO ferry_broker.members (channel, group_name, member_id) VALUES ($1, $2, $3)
       ON CONFLICT (channel, group_name, member_id) DO UPDATE SET heartbeat_at = now()`,
      [this.channel, this.group, this.memberId],
    );
    const { rows: live } = await this.pool.query<{ n: string }>(
      `WITH gone AS (
         DELETE FROM ferry_broker.members
          WHERE channel = $1 AND group_name = $2 AND heartbeat_at < now() - make_interval(secs => $3))
       SELECT count(*) AS n FROM ferry_broker.members
        WHERE channel = $1 AND group_name = $2 AND heartbeat_at >= now() - make_interval(secs => $3)`,
      [this.channel, this.group, leaseSeconds],
    );
    const members = Math.max(1, Number(live[0]?.n ?? 1));
    const share = Math.ceil(this.partitions / members);
    // Renew what we hold; a partition missing from the answer was lost.
    const { rows: renewed } = await this.pool.query<{ partition: number; committed_seq: string }>(
      `UPDATE ferry_broker.offsets SET lease_until = now() + make_interval(secs => $4)
        WHERE channel = $1 AND group_name = $2 AND owner = $3 RETURNING partition, committed_seq`,
      [this.channel, this.group, this.memberId, leaseSeconds],
    );
    const deadline = started + this.settings.leaseMs * 0.8;
    const held = new Map(renewed.map((r) => [r.partition, BigInt(r.committed_seq)]));
    for (const [partition, worker] of this.#workers) {
      if (held.has(partition)) worker.leaseDeadline = deadline;
      else {
        worker.abandoned = true;
        this.#workers.delete(partition);
      }
    }
    if (this.#closed) return;
    // A partition still held but without a worker (its worker retired after dropping messages,
    // e.g. when the database was unreachable): resume it from the committed offset.
    for (const [partition, committed] of held) {
      if (this.#workers.has(partition)) continue;
      const worker = new PartitionWorker(this, partition, committed, deadline);
      this.#workers.set(partition, worker);
      worker.fetch();
    }
    if (this.#closed) return;
    if (this.#workers.size > share) {
      const extras = [...this.#workers.keys()].sort((a, b) => b - a).slice(0, this.#workers.size - share);
      await Promise.all(extras.map((partition) => this.#release(partition)));
    } else if (this.#workers.size < share) {
      // A partition whose owner stopped without giving it back (its lease ran out) is taken over
      // carefully: the messages that owner may have had in flight (past the committed offset,
      // up to a window) are handed out one at a time (see PartitionWorker).
      const { rows: claimed } = await this.pool.query<{
        partition: number;
        committed_seq: string;
        careful: string;
      }>(
        `WITH claimable AS (
           SELECT channel, group_name, partition, owner FROM ferry_broker.offsets
            WHERE channel = $1 AND group_name = $2 AND (owner IS NULL OR lease_until < now())
            ORDER BY partition LIMIT $5 FOR UPDATE SKIP LOCKED)
         UPDATE ferry_broker.offsets o SET owner = $3, lease_until = now() + make_interval(secs => $4)
           FROM claimable c
          WHERE o.channel = c.channel AND o.group_name = c.group_name AND o.partition = c.partition
         RETURNING o.partition, o.committed_seq,
           CASE WHEN c.owner IS NULL THEN 0 ELSE LEAST($6::bigint, GREATEST(0, coalesce(
             (SELECT p.next_seq - 1 FROM ferry_broker.partitions p
               WHERE p.channel = o.channel AND p.partition = o.partition), 0) - o.committed_seq)) END AS careful`,
        [this.channel, this.group, this.memberId, leaseSeconds, share - this.#workers.size, this.windowSize],
      );
      for (const row of claimed) {
        const careful = Number(row.careful);
        if (careful > 0) this.#careful.set(row.partition, careful);
        else this.#careful.delete(row.partition);
        const worker = new PartitionWorker(this, row.partition, BigInt(row.committed_seq), deadline);
        this.#workers.set(row.partition, worker);
        worker.fetch();
      }
    }
  }

  async #release(partition: number): Promise<void> {
    const worker = this.#workers.get(partition);
    if (!worker) return;
    this.#workers.delete(partition);
    await worker.stop();
    await this.pool.query(
      `UPDATE ferry_broker.offsets SET owner = NULL, lease_until = NULL
        WHERE channel = $1 AND group_name = $2 AND partition = $3 AND owner = $4`,
      [this.channel, this.group, partition, this.memberId],
    );
  }

  /** Leaves the group: finishes handlers in flight, commits, gives the partitions back. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearInterval(this.#poll);
    await this.#ticking;
    await Promise.all([...this.#workers.keys()].map((partition) => this.#release(partition)));
    await this.pool
      .query('DELETE FROM ferry_broker.members WHERE channel = $1 AND group_name = $2 AND member_id = $3', [
        this.channel,
        this.group,
        this.memberId,
      ])
      .catch(() => {});
    this.onClosed(this);
  }
}
