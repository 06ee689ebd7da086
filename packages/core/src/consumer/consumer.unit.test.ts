import { waitFor, wire } from '@ferry/testing';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryBroker } from '../memory/memory-broker.js';
import { MemoryDeadLetterStore } from '../memory/memory-dead-letters.js';
import { MemoryInbox } from '../memory/memory-inbox.js';
import { MemoryOutbox } from '../memory/memory-outbox.js';
import { inMemoryTransaction, type MemoryTransaction } from '../memory/memory-transaction.js';
import { defineCommand, defineEvent, defineReply } from '../messaging/message-type.js';
import { event, Messaging } from '../messaging/messaging.js';
import { SchemaValidationError } from '../messaging/standard-schema.js';
import { type ConsumerEvent, MessageConsumer, NonRetryableError } from './consumer.js';

const PlaceOrder = defineCommand(
  'PlaceOrder',
  z.object({ orderId: z.string(), total: z.string() }),
  'orderService',
);
const OrderPlaced = defineReply('OrderPlaced', z.object({ orderId: z.string() }));
const OrderNoted = defineEvent('OrderNoted', z.object({ orderId: z.string() }), 'Order');
const OrderIgnored = defineEvent('OrderIgnored', z.object({}), 'Order');

function setup(handler: (orderId: string, attempt: number) => Promise<void>, retry = { maxAttempts: 3 }) {
  const broker = new MemoryBroker({ redeliveryDelayMs: 5 });
  const deadLetters = new MemoryDeadLetterStore(broker);
  const inbox = new MemoryInbox();
  const outbox = new MemoryOutbox(broker);
  const messaging = new Messaging<MemoryTransaction>(outbox);
  const events: ConsumerEvent[] = [];
  const effects: string[] = [];
  const consumer = new MessageConsumer<MemoryTransaction>({
    group: 'order-service',
    broker,
    inbox,
    deadLetters,
    retry: { initialDelayMs: 1, maxDelayMs: 5, ...retry },
    onEvent: (e) => events.push(e),
  })
    .on(PlaceOrder, async ({ tx, message, attempt }) => {
      await handler(message.payload.orderId, attempt);
      tx.afterCommit(() => effects.push(message.payload.orderId));
      await messaging.reply(tx, message, 'success', OrderPlaced, { orderId: message.payload.orderId });
    })
    .on(OrderNoted, async ({ message }) => void effects.push(`noted ${message.payload.orderId}`))
    .knows('Order', [OrderIgnored]);
  return { broker, deadLetters, messaging, consumer, events, effects, outbox };
}

const place = (m: Messaging<MemoryTransaction>, orderId: string, total = '1.00') =>
  inMemoryTransaction((tx) =>
    m.sendCommand(tx, PlaceOrder, { orderId, total }, { replyTo: 'client', correlationId: orderId }),
  );

describe('MessageConsumer', () => {
  it('handles a command, replies through the outbox, and skips a redelivered duplicate', async () => {
    const { consumer, messaging, effects, broker, events } = setup(async () => {});
    const replies: string[] = [];
    await broker.subscribe(
      { channel: 'client', group: 'client' },
      async (d) => void replies.push(d.message.headers.outcome!),
    );
    await consumer.start();
    const sent = await place(messaging, 'o-1');
    await waitFor(() => replies.length === 1, 'reply');
    // The broker delivers the same message again: the inbox absorbs it.
    const { toWire } = await import('../messaging/message.js');
    await broker.publish([toWire(sent)]);
    await waitFor(() => consumer.stats.duplicates === 1, 'duplicate counted');
    expect(effects).toEqual(['o-1']);
    expect(replies).toEqual(['success']);
    expect(events.map((e) => e.kind)).toEqual(['handled', 'duplicate']);
    await consumer.stop();
  });

  it('refuses to send a payload that fails its schema', async () => {
    const { messaging, outbox } = setup(async () => {});
    await expect(
      inMemoryTransaction((tx) => messaging.sendCommand(tx, PlaceOrder, { orderId: 'o', total: 3 } as never)),
    ).rejects.toThrow(SchemaValidationError);
    expect(outbox.published).toEqual([]);
  });

  it('retries a failing handler with backoff, then succeeds; its rolled-back attempts leave no effect', async () => {
    const { consumer, messaging, effects, events } = setup(async (_id, attempt) => {
      if (attempt < 3) throw new Error(`flaky ${attempt}`);
    });
    await consumer.start();
    await place(messaging, 'o-2');
    await waitFor(() => consumer.stats.handled === 1, 'handled');
    expect(effects).toEqual(['o-2']);
    expect(events.filter((e) => e.kind === 'retrying').length).toBe(2);
    await consumer.stop();
  });

  it('dead-letters a message after the last attempt, with the error and attempt count, and goes on', async () => {
    const { consumer, messaging, effects, deadLetters } = setup(async (id) => {
      if (id === 'bad') throw new Error('cannot place');
    });
    await consumer.start();
    await place(messaging, 'bad');
    await place(messaging, 'good');
    await waitFor(
      () => consumer.stats.deadLettered === 1 && consumer.stats.handled === 1,
      'one dead, one handled',
    );
    const [dead] = await deadLetters.list();
    expect(dead).toMatchObject({
      group: 'order-service',
      attempts: 3,
      reason: 'handler failed: Error: cannot place',
    });
    expect(dead!.error).toContain('cannot place');
    expect(dead!.message.headers.type).toBe('PlaceOrder');
    expect(effects).toEqual(['good']);
    await consumer.stop();
  });

  it('keeps other keys flowing while one key retries', async () => {
    let release = false;
    const { consumer, messaging, effects } = setup(
      async (id) => {
        if (id === 'slow' && !release) throw new Error('not yet');
      },
      { maxAttempts: 1000 },
    );
    await consumer.start();
    await place(messaging, 'slow');
    for (let i = 0; i < 5; i++) await place(messaging, `fast-${i}`);
    await waitFor(() => effects.length === 5, 'the five other keys');
    expect(effects).not.toContain('slow');
    release = true;
    await waitFor(() => effects.includes('slow'), 'the retried key');
    await consumer.stop();
  });

  it('dead-letters a NonRetryableError at once', async () => {
    const { consumer, messaging, deadLetters } = setup(async () => {
      throw new NonRetryableError('order is closed');
    });
    await consumer.start();
    await place(messaging, 'o-3');
    await waitFor(() => consumer.stats.deadLettered === 1, 'dead letter');
    expect((await deadLetters.list())[0]).toMatchObject({
      attempts: 1,
      reason: 'handler failed: NonRetryableError: order is closed',
    });
    await consumer.stop();
  });

  it.each([
    [
      'not JSON',
      wire('orderService', 'k', {}, { type: 'PlaceOrder', kind: 'command' }),
      '{nope',
      /^malformed: body is not JSON/,
    ],
    [
      'missing headers',
      { ...wire('orderService', 'k'), headers: {} },
      undefined,
      /^malformed: missing header\(s\): kind, type, createdAt/,
    ],
    [
      'an unknown type',
      wire('orderService', 'k', {}, { type: 'Mystery', kind: 'command' }),
      undefined,
      /^unknown message type Mystery on orderService/,
    ],
    [
      'a schema failure',
      wire('orderService', 'k', { orderId: 7 }, { type: 'PlaceOrder', kind: 'command' }),
      undefined,
      /^schema: PlaceOrder orderId: /,
    ],
    [
      'the wrong kind',
      wire('orderService', 'k', {}, { type: 'PlaceOrder', kind: 'event' }),
      undefined,
      /should be a command, got event/,
    ],
  ])('dead-letters a malformed message (%s) with its reason and goes on', async (_n, bad, body, reason) => {
    const { consumer, broker, messaging, deadLetters, effects } = setup(async () => {});
    await consumer.start();
    await broker.publish([body ? { ...bad, body } : bad]);
    await place(messaging, 'after');
    await waitFor(
      () => effects.includes('after') && consumer.stats.deadLettered === 1,
      'dead letter and next message',
    );
    const [dead] = await deadLetters.list();
    expect(dead!.reason).toMatch(reason);
    expect(dead!.attempts).toBe(0);
    await consumer.stop();
  });

  it('skips known event types it has no handler for, and handles the rest', async () => {
    const { consumer, messaging, effects } = setup(async () => {});
    await consumer.start();
    await inMemoryTransaction((tx) =>
      messaging.publishEvents(tx, { type: 'Order', id: 'o-9' }, [
        event(OrderIgnored, {}),
        event(OrderNoted, { orderId: 'o-9' }),
      ]),
    );
    await waitFor(() => effects.includes('noted o-9'), 'handled event');
    expect(consumer.stats.ignored).toBe(1);
    expect(consumer.stats.deadLettered).toBe(0);
    await consumer.stop();
  });

  it('a start that fails part-way takes nothing, and can be retried', async () => {
    const { consumer, messaging, broker, effects } = setup(async () => {});
    // The second channel's subscription fails once, as when the broker goes away mid-start.
    const subscribe = broker.subscribe.bind(broker);
    let refuse = true;
    broker.subscribe = async (options, handler) => {
      if (options.channel === 'Order' && refuse) {
        refuse = false;
        throw new Error('broker unreachable');
      }
      return subscribe(options, handler);
    };
    await expect(consumer.start()).rejects.toThrow('broker unreachable');
    await place(messaging, 'o-5');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(effects).toEqual([]); // the first channel's subscription was closed again
    await consumer.start();
    await waitFor(() => effects.includes('o-5'), 'the message, once started');
    await place(messaging, 'o-6');
    await waitFor(() => effects.includes('o-6'), 'the next message');
    expect(effects).toEqual(['o-5', 'o-6']);
    await consumer.stop();
  });

  it('dead-letters without running it a message the broker reports abandoned maxAbandoned times, and runs one reported fewer', async () => {
    const ran: string[] = [];
    const { consumer, messaging, broker, deadLetters } = setup(async (orderId) => {
      ran.push(orderId);
    });
    // The broker hands the consumer each message with the abandoned count a crash loop would give it.
    const subscribe = broker.subscribe.bind(broker);
    const counts = new Map([
      ['o-crash', 5],
      ['o-once', 4],
    ]);
    broker.subscribe = (options, handler) =>
      subscribe(options, (delivery) =>
        handler({
          ...delivery,
          abandoned: counts.get(JSON.parse(delivery.message.body).orderId as string),
        }),
      );
    await consumer.start();
    await place(messaging, 'o-crash');
    await place(messaging, 'o-once');
    await waitFor(() => ran.includes('o-once'), 'the message abandoned fewer times');
    await waitFor(() => consumer.stats.deadLettered === 1, 'the dead letter');
    expect(ran).toEqual(['o-once']);
    const [dead] = await deadLetters.list();
    expect(JSON.parse(dead!.message.body).orderId).toBe('o-crash');
    expect(dead!.reason).toMatch(/^abandoned 5 times: each consumer that took it stopped/);
    expect(dead!.attempts).toBe(5);
    await consumer.stop();
  });

  it('replays a dead letter: the group that failed handles it, groups that handled it skip it', async () => {
    let broken = true;
    const { consumer, messaging, deadLetters, effects } = setup(async () => {
      if (broken) throw new NonRetryableError('downstream broken');
    });
    await consumer.start();
    await place(messaging, 'o-4');
    await waitFor(() => consumer.stats.deadLettered === 1, 'dead letter');
    broken = false;
    const [dead] = await deadLetters.list();
    await deadLetters.replay(dead!.id);
    await waitFor(() => effects.includes('o-4'), 'replayed message handled');
    expect(await deadLetters.list()).toEqual([]);
    expect((await deadLetters.list({ includeReplayed: true }))[0]!.replayedAt).toBeDefined();
    await consumer.stop();
  });
});

describe('MessageConsumer and infrastructure failures', () => {
  it('retries an inbox failure (the database restarting) without counting it as an attempt', async () => {
    const broker = new MemoryBroker({ redeliveryDelayMs: 5 });
    const deadLetters = new MemoryDeadLetterStore(broker);
    const real = new MemoryInbox();
    let outage = 12; // more failures than maxAttempts
    const inbox = {
      handle: (group: string, id: string, work: (tx: MemoryTransaction) => Promise<void>) =>
        outage-- > 0 ? Promise.reject(new Error('connection refused')) : real.handle(group, id, work),
    };
    const effects: string[] = [];
    const consumer = new MessageConsumer<MemoryTransaction>({
      group: 'g',
      broker,
      inbox,
      deadLetters,
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 2 },
    }).on(PlaceOrder, async ({ message }) => void effects.push(message.payload.orderId));
    await consumer.start();
    const messaging = new Messaging<MemoryTransaction>(new MemoryOutbox(broker));
    await place(messaging, 'o-outage');
    await waitFor(() => effects.length === 1, 'handled after the outage');
    expect(consumer.stats.deadLettered).toBe(0);
    await consumer.stop();
  });

  it('treats handler errors the classifier calls transient the same way', async () => {
    const broker = new MemoryBroker({ redeliveryDelayMs: 5 });
    let failures = 6;
    const consumer = new MessageConsumer<MemoryTransaction>({
      group: 'g',
      broker,
      inbox: new MemoryInbox(),
      deadLetters: new MemoryDeadLetterStore(broker),
      retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 2 },
      isTransient: (e) => (e as Error).message === 'terminating connection due to administrator command',
    }).on(PlaceOrder, async () => {
      if (failures-- > 0) throw new Error('terminating connection due to administrator command');
    });
    await consumer.start();
    await place(new Messaging<MemoryTransaction>(new MemoryOutbox(broker)), 'o-x');
    await waitFor(() => consumer.stats.handled === 1, 'handled');
    expect(consumer.stats.deadLettered).toBe(0);
    await consumer.stop();
  });
});
