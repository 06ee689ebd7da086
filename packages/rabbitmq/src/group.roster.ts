import type { Channel, ChannelModel } from 'amqplib';

/** How long RabbitMQ keeps a roster queue nobody consumes (its members all gone). */
const ROSTER_EXPIRES_MS = 10 * 60_000;

/**
 * Counts a group's members. Partition queues cannot: with single-active-consumer RabbitMQ
 * reports only the active consumer. So every member also consumes a roster queue that never
 * holds a message, and its consumer count is the number of members.
 */
export class GroupRoster {
  #channel: Channel | undefined;

  constructor(readonly queue: string) {}

  /** Joins the roster on `model`. */
  async attach(model: ChannelModel): Promise<void> {
    await this.close();
    const channel = await model.createChannel();
    channel.on('error', () => {
      // A lost roster channel only pauses rebalancing until the next attach.
    });
    channel.on('close', () => {
      if (this.#channel === channel) this.#channel = undefined;
    });
    await channel.assertQueue(this.queue, {
      durable: false,
      autoDelete: false,
      arguments: { 'x-queue-type': 'classic', 'x-expires': ROSTER_EXPIRES_MS },
    });
    await channel.consume(this.queue, () => {}, { noAck: true });
    this.#channel = channel;
  }

  /** The group's member count, or undefined while the roster is not attached. */
  async members(): Promise<number | undefined> {
    const channel = this.#channel;
    if (!channel) return undefined;
    try {
      return (await channel.checkQueue(this.queue)).consumerCount;
    } catch {
      return undefined;
    }
  }

  /** Leaves the roster. */
  async close(): Promise<void> {
    const channel = this.#channel;
    this.#channel = undefined;
    await channel?.close().catch(() => {});
  }
}
