import type { Broker, DeliveryHandler, Subscription, SubscriptionSpec, WireMessage } from '@ferry/core';
import { DEFAULT_CONCURRENCY, partitionOf } from '@ferry/core';
import pg from 'pg';
import { brokerMigrations } from '../migrations/broker.migrations.js';
import { migrate } from '../migrations/migrate.js';
import { PgListener } from '../relay/listener.js';
import { GroupMember } from './group-member.js';
import { BROKER_NOTIFY_CHANNEL, PUBLISH_SQL } from './publish.sql.js';

/** Options of {@link PostgresBroker.connect}. */
export interface PostgresBrokerOptions {
  /** The broker's database (created with `ensureDatabase` first; its tables are migrated here). */
  readonly connectionString: string;
  /** Partitions of a channel created by this broker (default 16); fixed once the channel exists. */
  readonly partitions?: number;
  /** A member's hold on a partition lasts this long without a heartbeat, in ms (default 10,000). */
  readonly leaseMs?: number;
  /** Heartbeat and rebalance period, in ms (default a quarter of the lease). */
  readonly heartbeatMs?: number;
  /** Fallback poll when no notification arrives, in ms (default 1,000). */
  readonly pollIntervalMs?: number;
  /** Messages fetched ahead per partition (default 256). */
  readonly windowSize?: number;
  /**
   * A partition's committed offset is written at most this often, in ms (default 50): fewer
   * writes per message; after a crash at most this much is delivered again (the inbox absorbs it).
   */
  readonly commitIntervalMs?: number;
  /** Keep messages every group has consumed this long, in ms (default 24 h). */
  readonly retentionMs?: number;
  /** Connections in the broker's pool (default 10). */
  readonly poolSize?: number;
}

/**
 * A durable broker on PostgreSQL tables: the embedded default, so that a fresh machine runs
 * Ferry with no broker installed. Channels are partitioned logs, consumer groups keep leased
 * offsets per partition, LISTEN/NOTIFY wakes subscribers within milliseconds, and a member
 * that dies loses its leases, so another member redelivers what it had not committed.
 */
export class PostgresBroker implements Broker {
  readonly name = 'postgres';
  readonly #members = new Set<GroupMember>();
  readonly #partitions = new Map<string, number>();
  #purgeTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(
    readonly pool: pg.Pool,
    private readonly listener: PgListener,
    private readonly options: PostgresBrokerOptions,
  ) {}

  /** Migrates the broker database, starts listening, and returns the broker. */
  static async connect(options: PostgresBrokerOptions): Promise<PostgresBroker> {
    const pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 10 });
    pool.on('error', () => {}); // idle client errors surface on the next query
    let broker: PostgresBroker | undefined;
    const listener = new PgListener(options.connectionString, BROKER_NOTIFY_CHANNEL, (channel) =>
      broker?.notified(channel),
    );
    try {
      await migrate(pool, 'ferry-broker', brokerMigrations);
      await listener.start();
    } catch (error) {
      // Nothing left open: a caller that retries the connect does not pile up pools.
      await pool.end().catch(() => {});
      throw error;
    }
    broker = new PostgresBroker(pool, listener, options);
    broker.#purgeTimer = setInterval(() => void broker?.purge().catch(() => {}), 60_000);
    broker.#purgeTimer.unref();
    return broker;
  }

  async publish(messages: readonly WireMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const channels = [...new Set(messages.map((m) => m.channel))];
    for (const channel of channels) await this.#partitionCount(channel);
    const located = messages.map((m) => ({
      m,
      partition: partitionOf(m.partitionKey, this.#partitions.get(m.channel)!),
    }));
    const counts = new Map<string, { channel: string; partition: number; n: number }>();
    const idx: number[] = [];
    for (const { m, partition } of located) {
      const key = `${partition}\u0000${m.channel}`;
      const count = counts.get(key) ?? { channel: m.channel, partition, n: 0 };
      count.n++;
      counts.set(key, count);
      idx.push(count.n);
    }
    const runs = [...counts.values()];
    await this.pool.query({
      name: 'ferry_broker_publish',
      text: PUBLISH_SQL,
      values: [
        runs.map((r) => r.channel),
        runs.map((r) => r.partition),
        runs.map((r) => r.n),
        located.map((l) => l.m.channel),
        located.map((l) => l.partition),
        idx,
        located.map((l) => l.m.id),
        located.map((l) => l.m.partitionKey),
        located.map((l) => JSON.stringify(l.m.headers)),
        located.map((l) => l.m.body),
      ],
    });
  }

  async subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    if (this.#closed) throw new Error('broker is closed');
    const partitions = await this.#partitionCount(spec.channel);
    const leaseMs = this.options.leaseMs ?? 10_000;
    const member = new GroupMember(
      this.pool,
      spec.channel,
      spec.group,
      partitions,
      handler,
      {
        leaseMs,
        heartbeatMs: this.options.heartbeatMs ?? Math.max(50, Math.floor(leaseMs / 4)),
        pollIntervalMs: this.options.pollIntervalMs ?? 1000,
        windowSize: this.options.windowSize ?? 256,
        commitIntervalMs: this.options.commitIntervalMs ?? 50,
        concurrency: spec.concurrency ?? DEFAULT_CONCURRENCY,
      },
      (m) => this.#members.delete(m),
    );
    this.#members.add(member);
    await member.start();
    return member;
  }

  isReady(): boolean {
    return !this.#closed && this.listener.connected;
  }

  /** Deletes messages that every group has committed and that are older than the retention. */
  async purge(): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM ferry_broker.messages m
        USING (SELECT channel, partition, min(committed_seq) AS upto FROM ferry_broker.offsets GROUP BY 1, 2) o
        WHERE m.channel = o.channel AND m.partition = o.partition AND m.seq <= o.upto
          AND m.published_at < now() - make_interval(secs => $1::float8 / 1000)`,
      [this.options.retentionMs ?? 24 * 3600_000],
    );
    return rowCount ?? 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#purgeTimer);
    await Promise.all([...this.#members].map((m) => m.close()));
    await this.listener.stop();
    await this.pool.end();
  }

  /**
   * @internal Wakes the members of the notified channel, and in them the workers of the notified
   * partitions (all of them when the payload is empty: notifications may have been missed).
   */
  notified(payload: string): void {
    const split = payload.lastIndexOf('|');
    const channel = split < 0 ? payload : payload.slice(0, split);
    const partitions =
      split < 0
        ? undefined
        : payload
            .slice(split + 1)
            .split(',')
            .map(Number);
    for (const member of this.#members) if (!channel || member.channel === channel) member.wake(partitions);
  }

  async #partitionCount(channel: string): Promise<number> {
    const known = this.#partitions.get(channel);
    if (known) return known;
    // A concurrent first use may win the insert; its row is visible to a second statement.
    let partitions: number | undefined;
    for (let attempt = 0; partitions === undefined && attempt < 3; attempt++) {
      const { rows } = await this.pool.query<{ partitions: number }>(
        `WITH created AS (
           INSERT INTO ferry_broker.channels (channel, partitions) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING partitions)
         SELECT partitions FROM created UNION ALL SELECT partitions FROM ferry_broker.channels WHERE channel = $1`,
        [channel, this.options.partitions ?? 16],
      );
      partitions = rows[0]?.partitions;
    }
    if (partitions === undefined) throw new Error(`could not register channel ${channel}`);
    this.#partitions.set(channel, partitions);
    return partitions;
  }
}
