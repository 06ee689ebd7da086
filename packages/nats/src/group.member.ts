import { randomUUID } from 'node:crypto';
import {
  DEFAULT_CONCURRENCY,
  type DeliveryHandler,
  KeyedDispatcher,
  type Subscription,
  type SubscriptionSpec,
} from '@ferry/core';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { abortableSleep } from './abortable-sleep.js';
import { publishDeadLetter } from './dead-letter.js';
import type { JetStreamTopology } from './jetstream-topology.js';
import { consumerBase } from './naming.js';
import type { ResolvedNatsOptions } from './nats.options.js';
import { type HeldMessage, PartitionWorker } from './partition.worker.js';
import type { PartitionLeases } from './partition-lease.js';
import { assignedTo } from './partitioning.js';

/** The connection-wide things a member works with. */
export interface MemberContext {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly topology: JetStreamTopology;
  readonly leases: PartitionLeases;
  readonly options: ResolvedNatsOptions;
}

/**
 * One member of a consumer group on one channel: the live subscription behind
 * `NatsBroker.subscribe`. Every `leaseTtl / 3` it beats its heartbeat, lists the live members,
 * works out by rendezvous hashing which partitions are its share, renews the leases it holds,
 * releases partitions that are no longer its share (after their handlers finish) and acquires
 * its free ones. One {@link KeyedDispatcher} across its partitions runs up to `concurrency` keys
 * at once, each key's messages one at a time in stream order. A rejected message is retried in
 * place, holding its key, with doubling delays; past `maxDeliveries` it is dead-lettered.
 */
export class GroupMember implements Subscription {
  readonly #id = randomUUID().replaceAll('-', '');
  readonly #scope: string;
  readonly #workers = new Map<number, PartitionWorker>();
  readonly #stopped = new Map<PartitionWorker, Promise<void>>();
  readonly #dispatcher: KeyedDispatcher<HeldMessage>;
  #timer?: ReturnType<typeof setTimeout>;
  #ticking: Promise<void> = Promise.resolve();
  #closing?: Promise<void>;
  /** Closing: no heartbeat, no rebalancing, no acquisition; leases are still renewed. */
  #leaving = false;
  /** Closed: no more rounds. */
  #done = false;

  constructor(
    private readonly ctx: MemberContext,
    private readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
  ) {
    this.#scope = consumerBase(spec.group, spec.channel);
    this.#dispatcher = new KeyedDispatcher(spec.concurrency ?? DEFAULT_CONCURRENCY, (item) =>
      this.#handle(item),
    );
  }

  /** Joins the group: one round of membership, so that a lone member owns its partitions on return. */
  async start(): Promise<void> {
    await this.ctx.topology.ensureStream(this.spec.channel);
    this.#ticking = this.#tick();
    await this.#ticking;
    this.#schedule();
  }

  /** Leaves the group: releases every partition once its running handlers have settled. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#leaving = true;
    // A round in progress finishes; later rounds only renew leases (see #tick).
    await this.#ticking;
    await this.ctx.leases
      .leave(this.#scope, this.#id)
      .catch((error: unknown) => this.#report('leaving the group', error));
    for (const worker of this.#workers.values()) this.#drop(worker, 'release');
    // Leases stay renewed until the last handler has settled and its partition is given back.
    await Promise.all(this.#stopped.values());
    this.#done = true;
    clearTimeout(this.#timer);
    await this.#ticking;
    await this.#dispatcher.idle();
  }

  #schedule(): void {
    if (this.#done) return;
    const every = Math.max(200, Math.floor(this.ctx.leases.ttlMs / 3));
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick();
      void this.#ticking.then(() => this.#schedule());
    }, every);
  }

  /** One round of membership: renew, beat, rebalance, acquire. Only renewals while leaving. */
  async #tick(): Promise<void> {
    const { leases, options } = this.ctx;
    try {
      await Promise.all(
        [...this.#workers.values()]
          .filter((worker) => !worker.stopped)
          .map(async (worker) => {
            if (!(await leases.renew(this.#scope, worker.lease, this.#id))) this.#drop(worker, 'lost');
          }),
      );
      if (this.#leaving) return;
      await leases.heartbeat(this.#scope, this.#id);
      const members = await leases.members(this.#scope);
      if (!members.includes(this.#id)) members.push(this.#id);
      const share = new Set(assignedTo(this.#id, members, options.partitions));
      for (const worker of this.#workers.values()) {
        if (!share.has(worker.partition) && !worker.stopping) this.#drop(worker, 'release');
      }
      for (const partition of share) {
        if (this.#leaving) return;
        if (!this.#workers.has(partition)) await this.#acquire(partition);
      }
    } catch (error) {
      // Disconnected or JetStream busy: the next round tries again, and a lease that cannot be
      // renewed in time stops its worker (see PartitionWorker).
      this.#report('a membership round', error);
    }
  }

  #report(during: string, error: unknown): void {
    const where = `${this.spec.group} on ${this.spec.channel}`;
    this.ctx.options.onEvent({ kind: 'error', during: `${during} (${where})`, error });
  }

  async #acquire(partition: number): Promise<void> {
    const lease = await this.ctx.leases.acquire(this.#scope, partition, this.#id);
    if (!lease) return;
    const worker = new PartitionWorker(
      {
        ...this.ctx,
        group: this.spec.group,
        channel: this.spec.channel,
        dispatch: (item) => this.#dispatcher.push(item.wire.partitionKey, item),
        leaseExpired: (w) => this.#drop(w, 'lost'),
      },
      partition,
      lease,
    );
    this.#workers.set(partition, worker);
    try {
      await worker.start();
      this.#emit('partition-acquired', partition);
    } catch (error) {
      this.#workers.delete(partition);
      await this.ctx.leases.release(this.#scope, lease, this.#id).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Stops a worker, then gives its lease back once its handlers have settled. The release is a
   * compare-and-set on our last revision, so a lease somebody else took meanwhile is left alone.
   */
  #drop(worker: PartitionWorker, reason: 'release' | 'lost'): void {
    if (this.#stopped.has(worker)) return;
    const done = worker
      .stop(reason)
      .then(() => this.ctx.leases.release(this.#scope, worker.lease, this.#id))
      .then(() =>
        this.#emit(reason === 'release' ? 'partition-released' : 'partition-lost', worker.partition),
      )
      .catch((error: unknown) => this.#report(`releasing partition ${worker.partition}`, error))
      .finally(() => {
        if (this.#workers.get(worker.partition) === worker) this.#workers.delete(worker.partition);
        this.#stopped.delete(worker);
      });
    this.#stopped.set(worker, done);
  }

  #emit(kind: 'partition-acquired' | 'partition-released' | 'partition-lost', partition: number): void {
    this.ctx.options.onEvent({ kind, group: this.spec.group, channel: this.spec.channel, partition });
  }

  async #handle(item: HeldMessage): Promise<void> {
    const worker = item.worker;
    // A worker that stops returns its waiting messages itself.
    if (item.state !== 'waiting' || !(await this.#startable(item))) return;
    item.state = 'running';
    const { maxDeliveries } = this.ctx.options;
    let lastError: unknown;
    for (;;) {
      const deliveries = item.msg.info.deliveryCount + item.retries;
      if (deliveries > maxDeliveries) {
        const reason = deadLetterReason(deliveries - 1, item.retries, lastError);
        try {
          await publishDeadLetter(this.ctx.js, this.ctx.topology, this.ctx.options, {
            group: this.spec.group,
            message: item.wire,
            reason,
            deliveries: deliveries - 1,
          });
          await worker.settle(item, 'term');
          this.ctx.options.onEvent({
            kind: 'dead-lettered',
            group: this.spec.group,
            channel: this.spec.channel,
            messageId: item.wire.id,
            reason,
          });
          return;
        } catch (error) {
          this.#report(`dead-lettering message ${item.wire.id}`, error);
          if (!(await this.#pause(item, 1))) return worker.settle(item, 'nak');
          continue;
        }
      }
      try {
        await this.handler({ message: item.wire, deliveryCount: deliveries });
      } catch (error) {
        lastError = error;
        if (!(await this.#pause(item, item.retries + 1))) return worker.settle(item, 'nak');
        item.retries++;
        continue;
      }
      return worker.settle(item, 'ack');
    }
  }

  /** Waits before an in-place retry; false if the worker began stopping (return the message). */
  async #pause(item: HeldMessage, attempt: number): Promise<boolean> {
    const { retryDelayMs, maxRetryDelayMs } = this.ctx.options;
    if (item.worker.stopping) return false;
    const delay = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** (attempt - 1));
    await abortableSleep(delay, item.worker.signal);
    return this.#startable(item);
  }

  /**
   * Waits while the lease is in doubt (a renewal is late), because handing the message back then
   * would let later messages of its key overtake it; false once the worker stops.
   */
  async #startable(item: HeldMessage): Promise<boolean> {
    const worker = item.worker;
    while (!worker.mayStart() && !worker.stopping) await abortableSleep(100, worker.signal);
    return !worker.stopping;
  }
}

function deadLetterReason(deliveries: number, retries: number, error: unknown): string {
  if (retries === 0 || error === undefined) {
    return `delivered ${deliveries} times without being acknowledged (members crashed or timed out)`;
  }
  const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return `handler failed after ${deliveries} deliveries: ${cause}`;
}
