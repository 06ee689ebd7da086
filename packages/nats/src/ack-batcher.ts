import type { NatsConnection } from '@nats-io/transport-node';

/** An ack waiting to be sent, and whom to tell if it cannot be. */
interface PendingAck {
  readonly subject: string;
  readonly failed: (error: unknown) => void;
}

/**
 * Acks of one connection sent together, once per turn of the event loop. The client writes its
 * outbound buffer to the socket in a microtask after the first publish into it, so acks made in
 * one turn but several microtasks apart (an inbox transaction that handled a batch resolves its
 * messages' chains of promises one after another) would each cost a write of their own. Queued
 * here and published in one go from `setImmediate`, they share one write; the delay is the rest
 * of the current turn.
 */
export class AckBatcher {
  readonly #pending: PendingAck[] = [];
  #scheduled = false;

  constructor(private readonly nc: NatsConnection) {}

  /** Queues `+ACK` to `subject` for the end of this turn. */
  ack(subject: string, failed: (error: unknown) => void): void {
    this.#pending.push({ subject, failed });
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Publishes every queued ack now (a publish on a closed connection fails only its own ack). */
  flush(): void {
    this.#scheduled = false;
    for (const { subject, failed } of this.#pending.splice(0)) {
      try {
        this.nc.publish(subject, '+ACK');
      } catch (error) {
        failed(error);
      }
    }
  }
}

const batchers = new WeakMap<NatsConnection, AckBatcher>();

/** The ack batcher of `nc`, one per connection. */
export function ackBatcherOf(nc: NatsConnection): AckBatcher {
  let batcher = batchers.get(nc);
  if (!batcher) {
    batcher = new AckBatcher(nc);
    batchers.set(nc, batcher);
  }
  return batcher;
}
