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
  #channelModel: ChannelModel | undefined;
  #closed = false;
  #work: Promise<void> = Promise.resolve();

  constructor(
    readonly queue: string,
    private readonly currentModel: () => ChannelModel | undefined,
  ) {}

  /** Joins the roster on `model` (after any join in progress). */
  attach(model: ChannelModel): Promise<void> {
    const next = this.#work.then(() => this.#attach(model));
    this.#work = next.catch(() => {});
    return next;
  }

  async #attach(model: ChannelModel): Promise<void> {
    if (this.#closed || (this.#channel && this.#channelModel === model)) return;
    await this.#detach();
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
    await channel.consume(
      this.queue,
      (message) => {
        // null: RabbitMQ cancelled the consumer (the queue was deleted); the next count re-joins.
        if (message === null) void channel.close().catch(() => {});
      },
      { noAck: true },
    );
    this.#channel = channel;
    this.#channelModel = model;
    if (this.#closed) await this.#detach(); // Closed while attaching.
  }

  /** The group's member count (re-joining the roster if its channel was lost), or undefined if unknown. */
  async members(): Promise<number | undefined> {
    try {
      const model = this.currentModel();
      if (!this.#channel && model) await this.attach(model);
      const channel = this.#channel;
      return channel ? (await channel.checkQueue(this.queue)).consumerCount : undefined;
    } catch {
      return undefined;
    }
  }

  /** Leaves the roster for good. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#detach();
  }

  async #detach(): Promise<void> {
    const channel = this.#channel;
    this.#channel = undefined;
    await channel?.close().catch(() => {});
  }
}
