import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { asError } from './connection.js';
import type { RabbitMqEvent } from './rabbitmq.options.js';
import { sleep } from './sleep.js';

const MAX_REATTACH_DELAY_MS = 5_000;

/** Called for each message a partition queue hands this member, with the lease it came on. */
export type OnPartitionMessage = (message: ConsumeMessage, lease: Lease) => void;

/**
 * One attachment of a consumer to its queue (one AMQP channel). Deliveries are settled on the
 * lease they came with; the lease counts the deliveries not yet finished, so that the member
 * can wait for them before it leaves the queue.
 */
export interface Lease {
  /** Whether a delivery may still be handed to its handler (not leaving, channel still open). */
  readonly live: boolean;
  /** Counts a delivery as taken; {@link done} when its handling ends, acknowledged or not. */
  take(): void;
  done(): void;
  /** Acknowledges a delivery if its channel is still open; a delivery on a lost channel is redelivered. */
  ack(message: ConsumeMessage): void;
}

/** Settings of a partition consumer. */
export interface PartitionConsumerOptions {
  readonly prefetch: number;
  readonly onMessage: OnPartitionMessage;
  readonly onEvent: (event: RabbitMqEvent) => void;
  /** Pause before reopening a channel that closed while the connection stayed up. */
  readonly reattachDelayMs: number;
  /** The keeper's current connection. */
  readonly currentModel: () => ChannelModel | undefined;
}

/**
 * A member's consumer of one partition queue, on an AMQP channel of its own so that it can
 * leave the queue (by closing the channel) without touching the other partitions. RabbitMQ's
 * single-active-consumer makes at most one member's consumer active per queue. Leaving is always
 * done the same way: stop handing out deliveries, wait until those taken are finished, then close
 * the channel; the queue then puts what was not acknowledged back in front, in order, and only
 * then activates the next waiting member. (Cancelling the consumer first would activate the next
 * member while this one still holds earlier messages of the same keys.)
 */
export class PartitionConsumer {
  #lease: ChannelLease | undefined;
  #closing = false;
  #work: Promise<void> = Promise.resolve();
  #reattachPending = false;
  #reattachFailures = 0;
  /** Deliveries received since the rebalancer last looked. */
  delivered = 0;

  constructor(
    readonly queue: string,
    private readonly options: PartitionConsumerOptions,
  ) {}

  /** Opens a channel on `model` and starts consuming (after any hand-over in progress). */
  attach(model: ChannelModel): Promise<void> {
    return this.#serial(() => this.#attach(model));
  }

  /**
   * Leaves the queue and joins it again at the back of its waiting members, so that the next
   * waiting member becomes active; if there is none, this member is active again at once.
   */
  handOver(): Promise<void> {
    return this.#serial(async () => {
      const lease = this.#lease;
      const model = this.options.currentModel();
      if (!lease || this.#closing || !model) return;
      await this.#leave(lease);
      if (!this.#closing && this.options.currentModel() === model) await this.#attach(model);
    });
  }

  /** Stops handing out deliveries (the subscription is closing); those taken may still be acknowledged. */
  stopTaking(): void {
    this.#closing = true;
    this.#lease?.retire();
  }

  /** Leaves the queue for good, once the deliveries taken have finished. */
  close(): Promise<void> {
    this.stopTaking();
    return this.#serial(async () => {
      const lease = this.#lease;
      if (lease) await this.#leave(lease);
    });
  }

  async #attach(model: ChannelModel): Promise<void> {
    if (this.#closing) return;
    const channel = await model.createChannel();
    const lease = new ChannelLease(channel);
    this.#lease?.end();
    this.#lease = lease;
    channel.on('error', (error: Error) =>
      this.options.onEvent({ kind: 'consumer-failed', queue: this.queue, error }),
    );
    channel.on('close', () => {
      lease.end();
      if (this.#lease === lease && !this.#closing) this.#reattachLater(model);
    });
    await channel.prefetch(this.options.prefetch, false);
    await channel.consume(this.queue, (message) => {
      // null: RabbitMQ cancelled the consumer (its queue was deleted); reopen to consume again.
      if (message === null) void channel.close().catch(() => {});
      else if (lease.live) {
        this.delivered++;
        this.options.onMessage(message, lease);
      }
    });
  }

  async #leave(lease: ChannelLease): Promise<void> {
    lease.retire();
    // On a lost channel RabbitMQ has taken its deliveries back already: nothing to wait for.
    if (lease.open) await lease.idle();
    if (this.#lease === lease) this.#lease = undefined;
    await lease.close();
  }

  /**
   * The channel closed while the connection may be up (a channel error, a deleted queue): after
   * a pause that grows with each failure, reopen it, unless the connection changed meanwhile
   * (its restore reattaches). At most one reopening is pending at a time.
   */
  #reattachLater(model: ChannelModel): void {
    if (this.#reattachPending) return;
    this.#reattachPending = true;
    const delayMs = Math.min(
      MAX_REATTACH_DELAY_MS,
      this.options.reattachDelayMs * 2 ** this.#reattachFailures,
    );
    void sleep(delayMs).then(() =>
      this.#serial(async () => {
        this.#reattachPending = false;
        if (this.#closing || this.options.currentModel() !== model || this.#lease?.live) return;
        try {
          await this.#attach(model);
          this.#reattachFailures = 0;
        } catch (error) {
          this.#reattachFailures = Math.min(this.#reattachFailures + 1, 16);
          this.options.onEvent({ kind: 'consumer-failed', queue: this.queue, error: asError(error) });
          if (this.options.currentModel() === model && !this.#closing) this.#reattachLater(model);
        }
      }),
    );
  }

  /** Runs attach, hand-over and close one after another, never interleaved. */
  #serial(work: () => Promise<void>): Promise<void> {
    const next = this.#work.then(work);
    this.#work = next.catch(() => {});
    return next;
  }
}

class ChannelLease implements Lease {
  #open = true;
  #retired = false;
  #taken = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(private readonly channel: Channel) {}

  get live(): boolean {
    return this.#open && !this.#retired;
  }

  get open(): boolean {
    return this.#open;
  }

  take(): void {
    this.#taken++;
  }

  done(): void {
    this.#taken--;
    if (this.#taken === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
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

  /** Hands out nothing more; deliveries taken may still be acknowledged. */
  retire(): void {
    this.#retired = true;
  }

  /** Resolves once every delivery taken has finished. */
  idle(): Promise<void> {
    if (this.#taken === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
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
