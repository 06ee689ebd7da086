import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Outbox } from '../ports/outbox.port.js';
import { type Message, toWire } from './message.js';
import { defineCommand, defineEvent, defineReply } from './message-type.js';
import { event, Messaging } from './messaging.js';
import { SchemaValidationError } from './standard-schema.js';

const OrderCreated = defineEvent('OrderCreated', z.object({ orderId: z.string() }));
const CreateTicket = defineCommand('CreateTicket', z.object({ orderId: z.string() }), 'kitchen');
const TicketCreated = defineReply('TicketCreated', z.object({ ticketId: z.string() }));

const at = new Date('2026-11-27T10:00:00.123Z');

function messaging() {
  const appended: Message[] = [];
  const outbox: Outbox<string> = {
    append: async (tx, messages) => {
      expect(tx).toBe('tx-1');
      appended.push(...messages);
    },
  };
  return { appended, api: new Messaging(outbox, () => at) };
}

describe('Messaging headers', () => {
  it('publishes events keyed by the aggregate, with its type and id and the context extra headers', async () => {
    const { appended, api } = messaging();
    await api.publishEvents(
      'tx-1',
      { type: 'Order', id: 'o-1' },
      [event(OrderCreated, { orderId: 'o-1' }), event(OrderCreated, { orderId: 'o-1' })],
      { correlationId: 'c-1', traceparent: '00-aa-bb-01', extra: { principal: 'u-1', aggregateId: 'kept?' } },
    );
    expect(appended).toHaveLength(2);
    const [first, second] = appended;
    expect(first!.id).not.toBe(second!.id);
    const standard = {
      kind: 'event',
      type: 'OrderCreated',
      destination: 'Order',
      partitionKey: 'o-1',
      createdAt: '2026-11-27T10:00:00.123Z',
      correlationId: 'c-1',
      traceparent: '00-aa-bb-01',
    };
    // The context's extra headers are laid over the aggregate's.
    const extra = { aggregateType: 'Order', aggregateId: 'kept?', principal: 'u-1' };
    expect(first!.headers).toMatchObject({ ...standard, extra });
    expect(toWire(first!).headers).toEqual({ ...standard, ...extra });
  });

  it('sends a command with reply-to, keyed by its correlation id, caused by the message handled', async () => {
    const { appended, api } = messaging();
    const cause = await api.publishEvents('tx-1', { type: 'Order', id: 'o-1' }, [
      event(OrderCreated, { orderId: 'o-1' }),
    ]);
    const command = await api.sendCommand(
      'tx-1',
      CreateTicket,
      { orderId: 'o-1' },
      {
        replyTo: 'saga-replies',
        correlationId: 'saga-1',
        causedBy: { ...cause[0]!, headers: { ...cause[0]!.headers, tracestate: 'k=v' } },
      },
    );
    expect(appended.at(-1)).toBe(command);
    expect(command.headers).toMatchObject({
      kind: 'command',
      destination: 'kitchen',
      replyTo: 'saga-replies',
      correlationId: 'saga-1',
      partitionKey: 'saga-1',
      causationId: cause[0]!.id,
      tracestate: 'k=v',
    });
  });

  it('replies on the command’s reply-to channel with its correlation id, outcome and extra headers', async () => {
    const { api } = messaging();
    const command = await api.sendCommand(
      'tx-1',
      CreateTicket,
      { orderId: 'o-1' },
      { replyTo: 'saga-replies', correlationId: 'saga-1', extra: { principal: 'u-1' } },
    );
    const reply = await api.reply('tx-1', command, 'success', TicketCreated, { ticketId: 't-1' });
    expect(reply.headers).toMatchObject({
      kind: 'reply',
      destination: 'saga-replies',
      correlationId: 'saga-1',
      partitionKey: 'saga-1',
      causationId: command.id,
      outcome: 'success',
      extra: { principal: 'u-1' },
    });
  });

  it('refuses a payload that fails its schema before anything is appended', async () => {
    const { appended, api } = messaging();
    await expect(
      api.publishEvents('tx-1', { type: 'Order', id: 'o-1' }, [
        event(OrderCreated, { orderId: 7 } as unknown as { orderId: string }),
      ]),
    ).rejects.toThrow(SchemaValidationError);
    expect(appended).toHaveLength(0);
  });
});
