import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { asError } from './connection.js';
import type { RabbitMqEvent } from './rabbitmq.options.js';
import { sleep } from './sleep.js';

/** Called for each message a partition queue hands this member, tagged with the channel it came on. */
export type OnPartitionMessage = (message: ConsumeMessage, lease: Lease) => void;

/** One attachment of a consumer to its queue; deliveries are settled on the lease they came with. */
export interface Lease {
  /** Whether the delivery may still be handed to its handler (not closing, channel still open). */
  readonly live: boolean;
  /** Acknowledges a delivery if its channel is still open; a delivery on a lost channel is redelivered. */
  ack(message: ConsumeMessage): void;
}

/**
 * A member's consumer of one partition queue, on an AMQP channel of its own so that it can
 * leave the queue (by closing the channel) without touching the other partitions. RabbitMQ's
 * single-active-consumer makes at most one member's consumer active per queue; when that
 * member's channel closes, the queue returns its unacknowledged messages, in order, ahead of
 * the rest, and activates the next waiting member.
 */
export class PartitionConsumer {
  #lease: ChannelLease | undefined;
  #closing = false;
  #attaching: Promise<void> | undefined;

  constructor(
    readonly queue: string,
    private readonly prefetch: number,
    private readonly onMessage: OnPartitionMessage,
    private readonly onEvent: (event: RabbitMqEvent) => void,
    private readonly reattachDelayMs: number,
    private readonly currentModel: () => ChannelModel | undefined,
  ) {}

  /** Opens a channel on `model` and starts consuming. */
  async attach(model: ChannelModel): Promise<void> {
    if (this.#closing) return;
    const channel = await model.createChannel();
    const lease = new ChannelLease(channel, () => this.#closing);
    this.#lease?.end();
    this.#lease = lease;
    channel.on('error', (error: Error) =>
      this.onEvent({ kind: 'consumer-failed', queue: this.queue, error }),
    );
    channel.on('close', () => {
      lease.end();
      if (this.#lease === lease && !this.#closing) this.#scheduleReattach(model);
    });
    await channel.prefetch(this.prefetch, false);
    await channel.consume(this.queue, (message) => {
      // null: RabbitMQ cancelled the consumer (queue deleted); reopen to re-consume.
      if (message === null) void channel.close().catch(() => {});
      else if (lease.live) this.onMessage(message, lease);
    });
  }

  /** Stops handing out new deliveries; those in flight may still be acknowledged. */
  stopTaking(): void {
    this.#closing = true;
  }

  /** Closes the channel: RabbitMQ takes back what was not acknowledged and activates the next member. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#attaching;
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease) await lease.close();
  }

  /**
   * The channel closed while the connection may still be open (a channel error, a deleted
   * queue): reattach after a pause. A lost connection is restored by the broker's restore hook.
   */
  #scheduleReattach(model: ChannelModel): void {
    this.#attaching = (async () => {
      await sleep(this.reattachDelayMs);
      if (this.#closing || this.currentModel() !== model) return;
      try {
        await this.attach(model);
      } catch (error) {
        this.onEvent({ kind: 'consumer-failed', queue: this.queue, error: asError(error) });
        if (this.currentModel() === model && !this.#closing) this.#scheduleReattach(model);
      }
    })();
  }
}

class ChannelLease implements Lease {
  #open = true;

  constructor(
    private readonly channel: Channel,
    private readonly closing: () => boolean,
  ) {}

  get live(): boolean {
    return this.#open && !this.closing();
  }

  ack(message: ConsumeMessage): void {
    if (!this.#open) return;
    try {
      this.channel.ack(message);
    } catch {
      // The channel closed under us: RabbitMQ redelivers the message, as it must.
      this.#open = false;
    }
  }

  end(): void {
    this.#open = false;
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    await this.channel.close().catch(() => {});
  }
}
