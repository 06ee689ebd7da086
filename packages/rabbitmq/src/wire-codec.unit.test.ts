import type { WireMessage } from '@ferry/core';
import type { Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { routingKeyFor } from './names.js';
import { decodeWire, encodeWire, previousDeliveries } from './wire-codec.js';

const message: WireMessage = {
  id: '0190a5e0-0000-7000-8000-000000000001',
  channel: 'order.events',
  partitionKey: 'order-1',
  headers: { kind: 'event', type: 'OrderCreated', 'x-tenant': 'acme', 'ferry-h-x': 'y' },
  body: '{"total":"12.50 €"}',
};

/** What RabbitMQ hands back for an encoded message, plus the headers it adds. */
function delivered(wire: WireMessage, added: Record<string, unknown> = {}): Message {
  const encoded = encodeWire(wire);
  return {
    content: encoded.content,
    fields: {
      deliveryTag: 1,
      redelivered: false,
      exchange: 'ferry:order.events',
      routingKey: encoded.routingKey,
    },
    properties: { ...encoded.options, headers: { ...encoded.options.headers, ...added } },
  } as unknown as Message;
}

describe('wire codec', () => {
  it('round-trips a message, escaping header names reserved for RabbitMQ and the adapter', () => {
    const encoded = encodeWire(message);
    expect(encoded.options.headers).toMatchObject({
      'ferry-h-x-tenant': 'acme',
      'ferry-h-ferry-h-x': 'y',
      type: 'OrderCreated',
    });
    expect(encoded.options.persistent).toBe(true);
    expect(encoded.options.messageId).toBe(message.id);
    expect(decodeWire('order.events', delivered(message, { 'x-delivery-count': 2, 'x-death': [] }))).toEqual(
      message,
    );
  });

  it('counts earlier deliveries from the quorum queue header', () => {
    expect(previousDeliveries(delivered(message) as never)).toBe(0);
    expect(previousDeliveries(delivered(message, { 'x-delivery-count': 3 }) as never)).toBe(3);
  });

  it('routes a key too long for a routing key by a stable digest, and keeps the key itself', () => {
    const key = 'k'.repeat(300);
    expect(routingKeyFor(key)).toBe(routingKeyFor(key));
    expect(routingKeyFor(key)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(routingKeyFor('short')).toBe('short');
    expect(decodeWire('c', delivered({ ...message, partitionKey: key })).partitionKey).toBe(key);
  });

  it('rejects a header name AMQP cannot carry', () => {
    expect(() => encodeWire({ ...message, headers: { ['h'.repeat(300)]: 'v' } })).toThrow(
      /too long for AMQP/,
    );
  });
});
