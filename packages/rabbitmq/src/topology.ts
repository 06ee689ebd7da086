import type { Channel, ChannelModel } from 'amqplib';
import type { TopologyNames } from './names.js';

/** The RabbitMQ plugin that provides the `x-consistent-hash` exchange type. */
export const CONSISTENT_HASH_PLUGIN = 'rabbitmq_consistent_hash_exchange';

/** Thrown when RabbitMQ lacks the consistent-hash exchange plugin the adapter partitions with. */
export class RabbitMqPluginMissingError extends Error {
  override readonly name = 'RabbitMqPluginMissingError';
  constructor(cause: unknown) {
    super(
      `RabbitMQ plugin ${CONSISTENT_HASH_PLUGIN} is not enabled (exchange type x-consistent-hash is unknown); ` +
        `enable it with: rabbitmq-plugins enable ${CONSISTENT_HASH_PLUGIN}`,
      { cause },
    );
  }
}

/** Thrown when a group already exists with another number of partitions than the broker's option. */
export class PartitionCountMismatchError extends Error {
  override readonly name = 'PartitionCountMismatchError';
}

/** Whether an error from amqplib says the x-consistent-hash exchange type is unknown. */
export function isPluginMissing(error: unknown): boolean {
  return error instanceof Error && /unknown exchange type '?x-consistent-hash/i.test(error.message);
}

/** What a group's partition queues are declared with. */
export interface GroupSettings {
  readonly partitions: number;
  readonly deliveryLimit: number;
}

/**
 * Declares and deletes the adapter's exchanges and queues. All are durable; declaring is
 * idempotent, so every member declares what it needs at subscribe time and after a reconnect.
 *
 * ```
 * <ns>:<channel>            fanout           publishers send here
 *   └─ <ns>:<channel>:<group>   x-consistent-hash (internal), one per group
 *        └─ <ns>:<channel>:<group>:<i>   quorum queue, single active consumer, i < partitions
 * <ns>:dead-letter          fanout + quorum queue: what the queues' delivery limit dead-letters
 * ```
 */
export class Topology {
  readonly #groups = new Set<string>();
  #deadLetterDeclared = false;

  constructor(
    private readonly names: TopologyNames,
    private readonly settings: GroupSettings,
  ) {}

  /** Fails, naming the plugin, when RabbitMQ cannot make consistent-hash exchanges. */
  async checkPlugin(model: ChannelModel): Promise<void> {
    const probe = `${this.names.namespace}:plugin-check:${process.pid}:${Date.now().toString(36)}`;
    try {
      await withChannel(model, async (channel) => {
        await channel.assertExchange(probe, 'x-consistent-hash', { durable: false, autoDelete: true });
        await channel.deleteExchange(probe);
      });
    } catch (error) {
      if (isPluginMissing(error)) throw new RabbitMqPluginMissingError(error);
      throw error;
    }
  }

  /** The exchange a channel's messages are published to. */
  channelExchange(channel: string): string {
    return this.names.channelExchange(channel);
  }

  /** Declares a channel's exchange; `amqpChannel` is an open AMQP channel the caller keeps. */
  async declareChannel(amqpChannel: Channel, channel: string): Promise<string> {
    const exchange = this.names.channelExchange(channel);
    await amqpChannel.assertExchange(exchange, 'fanout', { durable: true });
    return exchange;
  }

  /**
   * Declares a group on a channel: its hash exchange and partition queues, bound to the channel
   * last, so that no message is routed before every partition is in the hash ring. Returns the
   * partition queue names.
   */
  async declareGroup(model: ChannelModel, channel: string, group: string): Promise<string[]> {
    const queues = Array.from({ length: this.settings.partitions }, (_, i) =>
      this.names.partitionQueue(channel, group, i),
    );
    const groupKey = `${channel}:${group}`;
    if (!this.#groups.has(groupKey)) await this.#checkPartitionCount(model, channel, group);
    const exchange = this.names.groupExchange(channel, group);
    const deadLetter = this.names.deadLetter();
    try {
      await withChannel(model, async (ch) => {
        if (!this.#deadLetterDeclared) {
          await ch.assertExchange(deadLetter, 'fanout', { durable: true });
          await ch.assertQueue(deadLetter, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
          await ch.bindQueue(deadLetter, deadLetter, '');
        }
        const channelExchange = await this.declareChannel(ch, channel);
        await ch.assertExchange(exchange, 'x-consistent-hash', { durable: true, internal: true });
        for (const queue of queues) {
          await ch.assertQueue(queue, { durable: true, arguments: this.#queueArguments() });
          await ch.bindQueue(queue, exchange, '1');
        }
        await ch.bindExchange(exchange, channelExchange, '');
      });
    } catch (error) {
      if (isPluginMissing(error)) throw new RabbitMqPluginMissingError(error);
      throw error;
    }
    this.#deadLetterDeclared = true;
    this.#groups.add(groupKey);
    return queues;
  }

  /** Deletes a group's queues (and the messages in them) and its hash exchange. */
  async deleteGroup(model: ChannelModel, channel: string, group: string, partitions: number): Promise<void> {
    await withChannel(model, async (ch) => {
      await ch.deleteExchange(this.names.groupExchange(channel, group));
      for (let i = 0; i < partitions; i++) await ch.deleteQueue(this.names.partitionQueue(channel, group, i));
      await ch.deleteQueue(this.names.rosterQueue(channel, group));
    });
    this.#groups.delete(`${channel}:${group}`);
  }

  /** Deletes a channel's exchange (groups bound to it stop receiving). */
  async deleteChannel(model: ChannelModel, channel: string): Promise<void> {
    await withChannel(model, (ch) => ch.deleteExchange(this.names.channelExchange(channel)).then(() => {}));
  }

  /** Deletes the dead-letter exchange and queue, with what they hold. */
  async deleteDeadLetter(model: ChannelModel): Promise<void> {
    await withChannel(model, async (ch) => {
      await ch.deleteExchange(this.names.deadLetter());
      await ch.deleteQueue(this.names.deadLetter());
    });
    this.#deadLetterDeclared = false;
  }

  #queueArguments(): Record<string, unknown> {
    return {
      'x-queue-type': 'quorum',
      // One member consumes a partition at a time; the next waiting member takes over when it leaves.
      'x-single-active-consumer': true,
      'x-delivery-limit': this.settings.deliveryLimit,
      'x-dead-letter-exchange': this.names.deadLetter(),
      // Keep a message until the dead-letter queue has confirmed it (needs reject-publish overflow).
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    };
  }

  /**
   * Refuses to add partitions to, or drop them from, an existing group: the consistent-hash
   * ring would move keys to other queues while earlier messages of theirs are still queued.
   */
  async #checkPartitionCount(model: ChannelModel, channel: string, group: string): Promise<void> {
    const p = this.settings.partitions;
    const name = (i: number) => this.names.partitionQueue(channel, group, i);
    if (await queueExists(model, name(p))) {
      throw new PartitionCountMismatchError(
        `group ${group} on ${channel} has more than ${p} partitions; use the partitions it was created with`,
      );
    }
    if (p > 1 && (await queueExists(model, name(0))) && !(await queueExists(model, name(p - 1)))) {
      throw new PartitionCountMismatchError(
        `group ${group} on ${channel} has fewer than ${p} partitions; use the partitions it was created with`,
      );
    }
  }
}

/** Runs `work` on a channel of its own, closed afterwards; a channel error fails only this work. */
export async function withChannel<T>(
  model: ChannelModel,
  work: (channel: Channel) => Promise<T>,
): Promise<T> {
  const channel = await model.createChannel();
  channel.on('error', () => {
    // The failed operation's promise rejects with the same error.
  });
  try {
    return await work(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}

async function queueExists(model: ChannelModel, queue: string): Promise<boolean> {
  try {
    await withChannel(model, (channel) => channel.checkQueue(queue));
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return false;
    throw error;
  }
}
