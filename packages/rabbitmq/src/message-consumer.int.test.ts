import {
  defineEvent,
  MemoryDeadLetterStore,
  MemoryInbox,
  type MemoryTransaction,
  MessageConsumer,
} from '@ferry/core';
import { uniqueChannel, waitFor, wire } from '@ferry/testing';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { rabbitFixture } from './testing/rabbitmq-fixture.js';

const url = inject('servers').rabbitmq;

describe.skipIf(!url)('MessageConsumer on RabbitMQ', () => {
  const fixture = rabbitFixture(url ?? '', 'consumer');

  afterAll(() => fixture.teardown());

  it('dead-letters a failing message into the store and goes on with its key; a resent message runs once', async () => {
    const channel = uniqueChannel('orders');
    const OrderNoted = defineEvent('OrderNoted', z.object({ orderId: z.string(), n: z.number() }), channel);
    const broker = await fixture.connect();
    const deadLetters = new MemoryDeadLetterStore(broker);
    const handled: number[] = [];
    const consumer = new MessageConsumer<MemoryTransaction>({
      group: 'kitchen',
      broker,
      inbox: new MemoryInbox(),
      deadLetters,
      retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 },
    }).on(OrderNoted, async ({ message }) => {
      if (message.payload.n === 2) throw new Error('cannot note order');
      handled.push(message.payload.n);
    });
    await consumer.start();
    const note = (n: number) => wire(channel, 'order-1', { orderId: 'order-1', n }, { type: 'OrderNoted' });
    const [first, second, third] = [note(1), note(2), note(3)];
    await broker.publish([first!, second!, third!, first!]); // The first one twice, as after a lost confirm.
    await waitFor(() => handled.includes(3), 'the message after the failing one', 10_000);
    await consumer.stop();

    expect(handled).toEqual([1, 3]);
    expect(consumer.stats).toMatchObject({ handled: 2, duplicates: 1, deadLettered: 1, retries: 2 });
    const [dead] = await deadLetters.list();
    expect(dead?.message.id).toBe(second!.id);
    expect(dead?.reason).toBe('handler failed: Error: cannot note order');
    expect(dead?.attempts).toBe(3);
  });
});
