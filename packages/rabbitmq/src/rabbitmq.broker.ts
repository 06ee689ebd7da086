import type {
  Broker,
  DeadLetterStore,
  DeliveryHandler,
  Subscription,
  SubscriptionSpec,
  WireMessage,
} from '@ferry/core';
import type { ChannelModel } from 'amqplib';
import { ConfirmPublisher } from './confirm.publisher.js';
import { ConnectionKeeper } from './connection.js';
import { transferDeadLetters } from './dead-letter.transfer.js';
import { TopologyNames } from './names.js';
import { type RabbitMqBrokerOptions, type ResolvedOptions, resolveOptions } from './rabbitmq.options.js';
import { RabbitMqSubscription } from './rabbitmq.subscription.js';
import { Topology } from './topology.js';

/**
 * The {@link Broker} port on RabbitMQ. A channel is a direct exchange; each consumer group has
 * `partitions` durable quorum queues with single-active-consumer, queue `i` bound with key `i`.
 * The publisher routes each message by its partition, FNV-1a of the partition key modulo
 * `partitions`, so a key always lands in the same queue of every group, one member consumes a
 * queue at a time, and nothing RabbitMQ rebuilds on a restart can move a key. Every publisher and
 * group of a channel must use the same `partitions` (else `PartitionCountMismatchError`).
 * Publishing waits for publisher confirms. The connection is kept: on loss the broker reports
 * not ready, reconnects with backoff, re-declares its topology and re-subscribes.
 *
 * @example
 * const broker = await connectRabbitMq({ url: 'amqp://guest:guest@127.0.0.1:5672' });
 * await broker.subscribe({ channel: 'order.events', group: 'kitchen' }, async ({ message }) => {});
 * await broker.publish([toWire(orderCreated)]);
 */
export class RabbitMqBroker implements Broker {
  readonly name = 'rabbitmq';
  readonly #options: ResolvedOptions;
  readonly #keeper: ConnectionKeeper;
  readonly #names: TopologyNames;
  readonly #topology: Topology;
  readonly #publisher: ConfirmPublisher;
  readonly #subscriptions = new Set<RabbitMqSubscription>();

  private constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#keeper = new ConnectionKeeper(options);
    this.#names = new TopologyNames(options.namespace);
    this.#topology = new Topology(this.#names, options);
    this.#publisher = new ConfirmPublisher(this.#keeper, this.#topology, options);
  }

  /** Connects; rejects, naming the server, when RabbitMQ cannot be reached. */
  static async connect(options: RabbitMqBrokerOptions): Promise<RabbitMqBroker> {
    const broker = new RabbitMqBroker(resolveOptions(options));
    await broker.#keeper.start();
    return broker;
  }

  /**
   * Publishes with publisher confirms; resolves once RabbitMQ confirmed every message, waiting
   * through an outage for up to `publishTimeoutMs`, else rejects with `RabbitMqPublishError`.
   * Rejects with `PartitionCountMismatchError` when a channel has another partition count.
   */
  publish(messages: readonly WireMessage[]): Promise<void> {
    return this.#publisher.publish(messages);
  }

  /** Declares the group's queues if needed and joins it; the member follows reconnections. */
  async subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    const model = await this.#model();
    const subscription = await RabbitMqSubscription.open(
      spec,
      handler,
      {
        prefetch: this.#options.prefetch,
        redelivery: this.#options.redelivery,
        onEvent: this.#options.onEvent,
        model: () => this.#keeper.model,
        rebalanceIntervalMs: this.#options.rebalanceIntervalMs,
        declare: async (m) => ({
          partitions: await this.#topology.declareGroup(m, spec.channel, spec.group),
          roster: this.#names.rosterQueue(spec.channel, spec.group),
        }),
        onRestore: (hook) => this.#keeper.onRestore(hook),
      },
      model,
    );
    this.#subscriptions.add(subscription);
    return {
      close: async () => {
        await subscription.close();
        this.#subscriptions.delete(subscription);
      },
    };
  }

  /**
   * Declares a group's queues without joining it, so that messages published before any of its
   * members runs are kept (a deploy step can call it). Subscribing declares them too.
   */
  async declareGroup(channel: string, group: string): Promise<void> {
    await this.#topology.declareGroup(await this.#model(), channel, group);
  }

  /**
   * Moves what RabbitMQ dead-lettered (the delivery-limit backstop) into `store`, to be listed and
   * replayed with the consumer's own dead letters; returns how many moved. Run it periodically
   * or from an operator's endpoint.
   */
  async transferDeadLetters(store: DeadLetterStore, limit = 1000): Promise<number> {
    return transferDeadLetters(await this.#model(), this.#names, store, {
      limit,
      deliveryLimit: this.#options.deliveryLimit,
    });
  }

  /** Deletes a retired group's queues and the messages in them. */
  async deleteGroup(channel: string, group: string): Promise<void> {
    await this.#topology.deleteGroup(await this.#model(), channel, group, this.#options.partitions);
  }

  /** Deletes a channel's exchange and partition-count record; groups bound to it stop receiving. */
  async deleteChannel(channel: string): Promise<void> {
    await this.#topology.deleteChannel(await this.#model(), channel);
  }

  /** False from a lost connection until it is back and every subscription is restored. */
  isReady(): boolean {
    return this.#keeper.ready;
  }

  /** Closes every subscription (waiting for handlers in flight), then the connection. */
  async close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    this.#subscriptions.clear();
    await this.#publisher.close();
    await this.#keeper.close();
  }

  #model(): Promise<ChannelModel> {
    return this.#keeper.whenReady(Date.now() + this.#options.publishTimeoutMs);
  }
}

/** Connects a {@link RabbitMqBroker}; rejects if RabbitMQ is unreachable. */
export function connectRabbitMq(options: RabbitMqBrokerOptions): Promise<RabbitMqBroker> {
  return RabbitMqBroker.connect(options);
}
