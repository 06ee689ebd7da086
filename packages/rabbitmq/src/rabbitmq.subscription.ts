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
import type { Lease } from './partition.consumer.js';
import { PartitionConsumer } from './partition.consumer.js';
import type { RabbitMqEvent } from './rabbitmq.options.js';
import { sleep } from './sleep.js';
import { decodeWire, previousDeliveries } from './wire-codec.js';

interface Pending {
  readonly message: ConsumeMessage;
  readonly lease: Lease;
}

/** What a subscription needs from its broker. */
export interface SubscriptionContext {
  readonly prefetch: number;
  readonly redelivery: RetryPolicy;
  readonly onEvent: (event: RabbitMqEvent) => void;
  readonly model: () => ChannelModel | undefined;
  /** Declares the group's topology and returns its partition queues. */
  readonly declare: (model: ChannelModel) => Promise<string[]>;
  /** Registers the subscription's restore hook; returns its removal. */
  readonly onRestore: (hook: (model: ChannelModel) => Promise<void>) => () => void;
}

/**
 * One member of a consumer group: a consumer per partition queue, whose deliveries go through a
 * {@link KeyedDispatcher} so that keys run in parallel and each key's messages one at a time, in
 * order. A rejected message is retried in place, before any later message of its key, and is
 * acknowledged only once its handler resolves.
 */
export class RabbitMqSubscription implements Subscription {
  readonly #dispatcher: KeyedDispatcher<Pending>;
  readonly #partitions: PartitionConsumer[];
  readonly #stop = new AbortController();
  readonly #removeRestore: () => void;
  #closed: Promise<void> | undefined;

  private constructor(
    private readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
    private readonly context: SubscriptionContext,
    queues: readonly string[],
  ) {
    this.#dispatcher = new KeyedDispatcher(spec.concurrency ?? DEFAULT_CONCURRENCY, (item) =>
      this.#run(item),
    );
    this.#partitions = queues.map(
      (queue) =>
        new PartitionConsumer(
          queue,
          context.prefetch,
          (message, lease) => this.#dispatcher.push(message.fields.routingKey, { message, lease }),
          context.onEvent,
          context.redelivery.initialDelayMs * 10,
          context.model,
        ),
    );
    this.#removeRestore = context.onRestore((model) => this.#restore(model));
  }

  /** Declares the group, then joins every partition queue. */
  static async open(
    spec: SubscriptionSpec,
    handler: DeliveryHandler,
    context: SubscriptionContext,
    model: ChannelModel,
  ): Promise<RabbitMqSubscription> {
    const queues = await context.declare(model);
    const subscription = new RabbitMqSubscription(spec, handler, context, queues);
    try {
      for (const partition of subscription.#partitions) await partition.attach(model);
    } catch (error) {
      await subscription.close();
      throw error;
    }
    return subscription;
  }

  /**
   * Stops handing out messages, waits for handlers in flight, then leaves every partition queue
   * so that RabbitMQ gives what this member did not acknowledge to the next member, in order.
   * It does not cancel the consumers first: a cancel would activate the next member while this
   * one still holds earlier messages of the same keys.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#removeRestore();
      this.#stop.abort();
      for (const partition of this.#partitions) partition.stopTaking();
      await this.#dispatcher.idle();
      await Promise.all(this.#partitions.map((partition) => partition.close()));
    })();
    return this.#closed;
  }

  async #restore(model: ChannelModel): Promise<void> {
    await this.context.declare(model);
    for (const partition of this.#partitions) await partition.attach(model);
  }

  async #run({ message, lease }: Pending): Promise<void> {
    const wire = decodeWire(this.spec.channel, message);
    const earlier = previousDeliveries(message);
    for (let attempt = 1; lease.live; attempt++) {
      try {
        await this.handler({ message: wire, deliveryCount: earlier + attempt });
      } catch {
        // Retried in place so that no later message of the key overtakes it; if this member
        // closes or loses its channel first, RabbitMQ hands the message to the next member.
        await sleep(backoffDelay(this.context.redelivery, attempt), this.#stop.signal);
        continue;
      }
      lease.ack(message);
      return;
    }
  }
}
