import {
  backoffDelay,
  DEFAULT_CONCURRENCY,
  type DeliveryHandler,
  KeyedDispatcher,
  type RetryPolicy,
  type Subscription,
  type SubscriptionSpec,
} from '@ferry/core';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { asError } from './connection.js';
import { GroupRoster } from './group.roster.js';
import { type Lease, PartitionConsumer } from './partition.consumer.js';
import type { RabbitMqEvent } from './rabbitmq.options.js';
import { Rebalancer } from './rebalancer.js';
import { sleep } from './sleep.js';
import { decodeWire, partitionKeyOf, previousDeliveries } from './wire-codec.js';

interface Pending {
  readonly message: ConsumeMessage;
  readonly lease: Lease;
}

/** What a subscription needs from its broker. */
export interface SubscriptionContext {
  readonly prefetch: number;
  readonly redelivery: RetryPolicy;
  readonly rebalanceIntervalMs: number;
  readonly onEvent: (event: RabbitMqEvent) => void;
  readonly model: () => ChannelModel | undefined;
  /** Declares the group's topology; returns its partition queues and its roster queue. */
  readonly declare: (model: ChannelModel) => Promise<{ partitions: string[]; roster: string }>;
  /** Registers the subscription's restore hook; returns its removal. */
  readonly onRestore: (hook: (model: ChannelModel) => Promise<void>) => () => void;
}

/**
 * One member of a consumer group: a consumer per partition queue, whose deliveries go through a
 * {@link KeyedDispatcher} so that keys run in parallel and each key's messages one at a time, in
 * order. A rejected message is retried in place, before any later message of its key, and is
 * acknowledged only once its handler resolves. A {@link Rebalancer} spreads busy partitions
 * over the group's members.
 */
export class RabbitMqSubscription implements Subscription {
  readonly #dispatcher: KeyedDispatcher<Pending>;
  readonly #partitions: PartitionConsumer[];
  readonly #roster: GroupRoster;
  readonly #rebalancer: Rebalancer | undefined;
  readonly #stop = new AbortController();
  readonly #removeRestore: () => void;
  #closed: Promise<void> | undefined;

  private constructor(
    private readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
    private readonly context: SubscriptionContext,
    queues: { partitions: string[]; roster: string },
  ) {
    this.#dispatcher = new KeyedDispatcher(spec.concurrency ?? DEFAULT_CONCURRENCY, (item) =>
      this.#run(item),
    );
    this.#partitions = queues.partitions.map(
      (queue) =>
        new PartitionConsumer(queue, {
          prefetch: context.prefetch,
          onMessage: (message, lease) => {
            lease.take();
            // The routing key is the partition number: keys are told apart by their header.
            this.#dispatcher.push(partitionKeyOf(message), { message, lease });
          },
          onEvent: context.onEvent,
          reattachDelayMs: Math.max(100, context.redelivery.initialDelayMs * 10),
          currentModel: context.model,
        }),
    );
    this.#roster = new GroupRoster(queues.roster, context.model);
    if (context.rebalanceIntervalMs > 0) {
      this.#rebalancer = new Rebalancer(
        this.#partitions,
        this.#roster,
        context.rebalanceIntervalMs,
        (error) => context.onEvent({ kind: 'consumer-failed', queue: queues.roster, error: asError(error) }),
      );
    }
    this.#removeRestore = context.onRestore((model) => this.#restore(model));
  }

  /** Declares the group, then joins every partition queue and the group's roster. */
  static async open(
    spec: SubscriptionSpec,
    handler: DeliveryHandler,
    context: SubscriptionContext,
    model: ChannelModel,
  ): Promise<RabbitMqSubscription> {
    const queues = await context.declare(model);
    const subscription = new RabbitMqSubscription(spec, handler, context, queues);
    try {
      await subscription.#join(model);
    } catch (error) {
      await subscription.close();
      throw error;
    }
    subscription.#rebalancer?.start();
    return subscription;
  }

  /**
   * Stops handing out messages, waits for handlers in flight, then leaves every partition queue
   * so that RabbitMQ gives what this member did not acknowledge to the next member, in order.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#removeRestore();
      this.#stop.abort();
      await this.#rebalancer?.stop();
      for (const partition of this.#partitions) partition.stopTaking();
      await this.#dispatcher.idle();
      await Promise.all(this.#partitions.map((partition) => partition.close()));
      await this.#roster.close();
    })();
    return this.#closed;
  }

  async #restore(model: ChannelModel): Promise<void> {
    await this.context.declare(model);
    await this.#join(model);
  }

  async #join(model: ChannelModel): Promise<void> {
    for (const partition of this.#partitions) await partition.attach(model);
    if (this.#rebalancer) await this.#roster.attach(model);
  }

  async #run({ message, lease }: Pending): Promise<void> {
    try {
      const wire = decodeWire(this.spec.channel, message);
      const earlier = previousDeliveries(message);
      for (let attempt = 1; lease.live; attempt++) {
        try {
          await this.handler({ message: wire, deliveryCount: earlier + attempt });
        } catch {
          // Retried in place so that no later message of the key overtakes it; if this member
          // leaves the partition or loses its channel first, RabbitMQ hands the message on.
          await sleep(backoffDelay(this.context.redelivery, attempt), this.#stop.signal);
          continue;
        }
        lease.ack(message);
        return;
      }
    } finally {
      lease.done();
    }
  }
}
