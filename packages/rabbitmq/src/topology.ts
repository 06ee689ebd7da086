import type { Channel, ChannelModel } from 'amqplib';
import type { TopologyNames } from './names.js';
import { partitionRoutingKey } from './partitioning.js';

/**
 * Thrown when a channel or a group already has another number of partitions than the broker's
 * `partitions` option. Every publisher and every group of a channel must agree on it: the
 * partition of a key is its hash modulo the count, so another count sends the key's messages
 * to another queue than its earlier ones, and they would no longer be handled in order.
 */
export class PartitionCountMismatchError extends Error {
  override readonly name = 'PartitionCountMismatchError';

  constructor(
    message: string,
    /** The channel whose partition count differs. */
    readonly channel: string,
    /** The partitions this broker is configured with. */
    readonly partitions: number,
    /** The partitions the channel already has, when RabbitMQ said so. */
    readonly existing: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The {@link PartitionCountMismatchError} a refused declaration of a channel's partition-count
 * queue means, or undefined if the error is something else. RabbitMQ refuses (406) a queue
 * declared with another `x-max-length` than it has, naming both values.
 */
export function partitionCountMismatch(
  error: unknown,
  channel: string,
  partitions: number,
): PartitionCountMismatchError | undefined {
  if ((error as { code?: unknown } | undefined)?.code !== 406) return undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (!/inequivalent arg 'x-max-length' for queue/.test(message)) return undefined;
  const current = /but current is (?:the value )?'(\d+)'/.exec(message)?.[1];
  const existing = current === undefined ? undefined : Number(current);
  const theirs = existing === undefined ? 'another number of partitions' : `${existing} partitions`;
  return new PartitionCountMismatchError(
    `channel ${channel} has ${theirs}, but this broker is configured with partitions: ${partitions}; ` +
      'every publisher and consumer group of a channel must use the same number of partitions',
    channel,
    partitions,
    existing,
    { cause: error },
  );
}

/** What a group's partition queues are declared with. */
export interface GroupSettings {
  readonly partitions: number;
  readonly deliveryLimit: number;
}

/**
 * Declares and deletes the adapter's exchanges and queues. All are durable; declaring is
 * idempotent, so every member declares what it needs at subscribe time and after a reconnect,
 * and every publisher declares the channels it publishes to.
 *
 * ```
 * <ns>:<channel>.v2                 direct exchange      publishers send here, routing key = partition
 *   └─ <ns>:<channel>:<group>:<i>   quorum queue, single active consumer, bound with key i, i < partitions
 * <ns>:<channel>.v2:partitions      quorum queue, x-max-length = partitions: the channel's partition count
 * <ns>:dead-letter                  fanout + quorum queue: what the queues' delivery limit dead-letters
 * ```
 *
 * The publisher computes each message's partition (FNV-1a of the key modulo `partitions`), so
 * where a key goes depends on nothing RabbitMQ rebuilds when it restarts.
 */
export class Topology {
  readonly #groups = new Set<string>();
  #deadLetterDeclared = false;

  constructor(
    private readonly names: TopologyNames,
    private readonly settings: GroupSettings,
  ) {}

  /** The exchange a channel's messages are published to. */
  channelExchange(channel: string): string {
    return this.names.channelExchange(channel);
  }

  /**
   * Declares a channel: the queue recording its partition count, then its exchange.
   * `amqpChannel` is an open AMQP channel the caller keeps. Fails with
   * {@link PartitionCountMismatchError} when the channel has another partition count.
   */
  async declareChannel(amqpChannel: Channel, channel: string): Promise<string> {
    const { partitions } = this.settings;
    try {
      await amqpChannel.assertQueue(this.names.partitionCountQueue(channel), {
        durable: true,
        // RabbitMQ compares x-max-length on every declaration (it ignores unknown arguments, on
        // exchanges all but alternate-exchange), so a publisher or group with another count fails.
        arguments: { 'x-queue-type': 'quorum', 'x-max-length': partitions },
      });
    } catch (error) {
      throw partitionCountMismatch(error, channel, partitions) ?? error;
    }
    const exchange = this.names.channelExchange(channel);
    await amqpChannel.assertExchange(exchange, 'direct', {
      durable: true,
      // For operators reading the exchange; the queue above is what RabbitMQ enforces.
      arguments: { 'x-ferry-partitions': partitions },
    });
    return exchange;
  }

  /**
   * Declares a group on a channel: every partition queue first, then their bindings (queue `i`
   * with binding key `i`). The channel exchange routes a message only to the queue of its own
   * partition, so a half-declared group can miss a message but never misplace one; from the
   * moment `declareGroup` resolves, every message of the channel is kept. Returns the
   * partition queue names.
   */
  async declareGroup(model: ChannelModel, channel: string, group: string): Promise<string[]> {
    const queues = Array.from({ length: this.settings.partitions }, (_, i) =>
      this.names.partitionQueue(channel, group, i),
    );
    const groupKey = `${channel}:${group}`;
    if (!this.#groups.has(groupKey)) await this.#checkPartitionCount(model, channel, group);
    const deadLetter = this.names.deadLetter();
    await withChannel(model, async (ch) => {
      if (!this.#deadLetterDeclared) {
        await ch.assertExchange(deadLetter, 'fanout', { durable: true });
        await ch.assertQueue(deadLetter, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
        await ch.bindQueue(deadLetter, deadLetter, '');
      }
      const exchange = await this.declareChannel(ch, channel);
      for (const queue of queues) {
        await ch.assertQueue(queue, { durable: true, arguments: this.#queueArguments() });
      }
      for (const [index, queue] of queues.entries()) {
        await ch.bindQueue(queue, exchange, partitionRoutingKey(index));
      }
    });
    this.#deadLetterDeclared = true;
    this.#groups.add(groupKey);
    return queues;
  }

  /** Deletes a group's queues (and the messages in them); their bindings go with them. */
  async deleteGroup(model: ChannelModel, channel: string, group: string, partitions: number): Promise<void> {
    await withChannel(model, async (ch) => {
      for (let i = 0; i < partitions; i++) await ch.deleteQueue(this.names.partitionQueue(channel, group, i));
      await ch.deleteQueue(this.names.rosterQueue(channel, group));
    });
    this.#groups.delete(`${channel}:${group}`);
  }

  /**
   * Deletes a channel's exchange (groups bound to it stop receiving) and the record of its
   * partition count. A group's queues keep their own count: subscribing with another still fails.
   */
  async deleteChannel(model: ChannelModel, channel: string): Promise<void> {
    await withChannel(model, async (ch) => {
      await ch.deleteExchange(this.names.channelExchange(channel));
      await ch.deleteQueue(this.names.partitionCountQueue(channel));
    });
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
   * Refuses to add partitions to, or drop them from, an existing group: another count moves keys
   * to other queues while earlier messages of theirs are still queued. (The channel's recorded
   * count catches the same mismatch unless the channel was deleted and declared again.)
   */
  async #checkPartitionCount(model: ChannelModel, channel: string, group: string): Promise<void> {
    const p = this.settings.partitions;
    const name = (i: number) => this.names.partitionQueue(channel, group, i);
    if (await queueExists(model, name(p))) {
      throw new PartitionCountMismatchError(
        `group ${group} on ${channel} has more than ${p} partitions; use the partitions it was created with`,
        channel,
        p,
        undefined,
      );
    }
    if (p > 1 && (await queueExists(model, name(0))) && !(await queueExists(model, name(p - 1)))) {
      throw new PartitionCountMismatchError(
        `group ${group} on ${channel} has fewer than ${p} partitions; use the partitions it was created with`,
        channel,
        p,
        undefined,
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
