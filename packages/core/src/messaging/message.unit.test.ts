import { describe, expect, it } from 'vitest';
import { fromWire, MalformedMessageError, toWire, type WireMessage } from './message.js';

const base: WireMessage = {
  id: '0190d6a8-0000-7000-8000-000000000000',
  channel: 'Order',
  partitionKey: 'o-1',
  headers: { kind: 'event', type: 'OrderCreated', createdAt: '2026-11-27T00:00:00.000Z', principal: 'u-1' },
  body: '{"orderId":"o-1"}',
};

describe('wire format', () => {
  it('round-trips standard and extra headers', () => {
    const message = fromWire(base);
    expect(message.headers.type).toBe('OrderCreated');
    expect(message.headers.destination).toBe('Order');
    expect(message.headers.extra).toEqual({ principal: 'u-1' });
    expect(toWire(message)).toEqual({
      ...base,
      headers: { ...base.headers, destination: 'Order', partitionKey: 'o-1' },
    });
  });

  it.each([
    ['a body that is not JSON', { body: '{oops' }, /body is not JSON/],
    ['a missing type header', { headers: { kind: 'event', createdAt: 'x' } }, /missing header\(s\): type/],
    [
      'an unknown kind',
      { headers: { kind: 'gossip', type: 'X', createdAt: 'x' } },
      /invalid kind header: gossip/,
    ],
    [
      'a reply without outcome',
      { headers: { kind: 'reply', type: 'X', createdAt: 'x' } },
      /no valid outcome/,
    ],
  ])('rejects %s with a reason', (_name, change, reason) => {
    expect(() => fromWire({ ...base, ...change } as WireMessage)).toThrow(MalformedMessageError);
    expect(() => fromWire({ ...base, ...change } as WireMessage)).toThrow(reason);
  });
});
