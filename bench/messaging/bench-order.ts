import { defineEvent, event, type Message, Messaging, type WireMessage } from '@ferry/core';
import { type PostgresMessaging, withTransaction } from '@ferry/postgres';
import { z } from 'zod';

/**
 * The message the broker benches send: an order placed, keyed by one of {@link KEYS} order ids.
 * `scheduledAt` carries the open-loop schedule so that whoever sees the message later can time
 * it. Each phase uses a channel of its own, so that no phase sees another's messages.
 */
const payload = z.object({ orderId: z.string(), total: z.string(), scheduledAt: z.number() });

/** Partition keys the orders are spread over. */
export const KEYS = 64;

/** Builds messages exactly as `publishEvents` does, without writing them anywhere. */
const builder = new Messaging<null>({ append: async () => {} });

/** OrderPlaced events on one channel: the business transaction that sends one, and backlogs of them. */
export class BenchOrders {
  readonly type;
  #placed = 0;

  constructor(readonly channel: string) {
    this.type = defineEvent('OrderPlaced', payload, channel);
  }

  /** Creates the producer's business table in the service's database. */
  async createTable(service: PostgresMessaging): Promise<void> {
    await service.pool.query(
      'CREATE TABLE IF NOT EXISTS orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id text NOT NULL, total numeric NOT NULL)',
    );
  }

  /** One business transaction: an order row and its OrderPlaced event, committed together; resolves to the message id. */
  async place(service: PostgresMessaging, scheduledAt = 0): Promise<string> {
    const orderId = `order-${this.#placed++ % KEYS}`;
    return withTransaction(service.pool, async (tx) => {
      await tx.query('INSERT INTO orders (order_id, total) VALUES ($1, $2)', [orderId, '12.34']);
      const [message] = await service.messaging.publishEvents(tx, { type: 'BenchOrder', id: orderId }, [
        event(this.type, { orderId, total: '12.34', scheduledAt }),
      ]);
      return message!.id;
    });
  }

  /** `count` messages, keys taken in turn, with the headers `publishEvents` gives them. */
  async build(count: number, scheduledAt = 0): Promise<Message[]> {
    const messages: Message[] = [];
    for (let i = 0; i < count; i++) {
      const orderId = `order-${i % KEYS}`;
      const built = await builder.publishEvents(null, { type: 'BenchOrder', id: orderId }, [
        event(this.type, { orderId, total: '12.34', scheduledAt }),
      ]);
      messages.push(...built);
    }
    return messages;
  }

  /**
   * Leaves `count` unpublished messages in the outbox (no relay runs), keys taken in turn,
   * appended through the service's outbox in transactions of 1,000, for a relay to drain.
   */
  async fill(service: PostgresMessaging, count: number): Promise<void> {
    for (let done = 0; done < count; ) {
      const messages = await this.build(Math.min(1000, count - done));
      await withTransaction(service.pool, (tx) => service.messaging.send(tx, messages));
      done += messages.length;
    }
  }
}

/** The `scheduledAt` an OrderPlaced wire message carries. */
export function scheduledAtOf(message: WireMessage): number {
  return (JSON.parse(message.body) as { scheduledAt: number }).scheduledAt;
}

/**
 * Starts the benches' consuming service: each order it handles is recorded in its table `seen`,
 * in the inbox transaction, and reported to `onHandled`.
 */
export async function startSeenConsumer(
  consumerSide: PostgresMessaging,
  type: BenchOrders['type'],
  onHandled: (message: Message<z.infer<typeof payload>>) => void,
): Promise<{ stop(): Promise<void> }> {
  await consumerSide.pool.query('CREATE TABLE seen (order_id text, total numeric)');
  const consumer = consumerSide
    .consumer('bench-consumer', {
      concurrency: 16,
      onEvent: (e) => {
        if (e.kind === 'handled') onHandled(e.message as Message<z.infer<typeof payload>>);
      },
    })
    .on(type, async ({ tx, message }) => {
      await tx.query('INSERT INTO seen VALUES ($1, $2)', [message.payload.orderId, message.payload.total]);
    });
  await consumer.start();
  return consumer;
}
