import type { WireMessage } from '@ferry/core';
import type { Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { partitionOf } from './partitioning.js';
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
  const encoded = encodeWire(wire, 8);
  return {
    content: encoded.content,
    fields: {
      deliveryTag: 1,
      redelivered: false,
      exchange: 'ferry:order.events.v2',
      routingKey: encoded.routingKey,
    },
    properties: { ...encoded.options, headers: { ...encoded.options.headers, ...added } },
  } as unknown as Message;
}

describe('wire codec', () => {
  it('round-trips a message, escaping header names reserved for RabbitMQ and the adapter', () => {
    const encoded = encodeWire(message, 8);
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

  it('routes by the partition of the key and carries the key itself, however long', () => {
    expect(encodeWire(message, 8).routingKey).toBe(String(partitionOf('order-1', 8)));
    expect(encodeWire(message, 1).routingKey).toBe('0');
    const key = 'k'.repeat(300);
    expect(encodeWire({ ...message, partitionKey: key }, 8).routingKey).toBe(String(partitionOf(key, 8)));
    expect(decodeWire('c', delivered({ ...message, partitionKey: key })).partitionKey).toBe(key);
  });

  it('takes the routing key (the partition) as the key of a message published without the adapter', () => {
    const foreign = delivered(message);
    delete (foreign.properties.headers as Record<string, unknown>)['ferry-partition-key'];
    expect(decodeWire('order.events', foreign).partitionKey).toBe(String(partitionOf('order-1', 8)));
  });

  it('rejects a header name AMQP cannot carry', () => {
    expect(() => encodeWire({ ...message, headers: { ['h'.repeat(300)]: 'v' } }, 8)).toThrow(
      /too long for AMQP/,
    );
  });
});
