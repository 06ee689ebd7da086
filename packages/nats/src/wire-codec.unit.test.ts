import { replayedWire, type WireMessage } from '@ferry/core';
import { describe, expect, it } from 'vitest';
import { decodeWire, encodeWire } from './wire-codec.js';

const message: WireMessage = {
  id: '0190a0b0-0000-7000-8000-000000000001',
  channel: 'Order',
  partitionKey: 'order 1/ü',
  headers: {
    kind: 'event',
    type: 'OrderCreated',
    'x:odd name': '  padded, with\nnewline ✓ ',
    traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
  },
  body: '{"text":"zürich ✓ \\"quoted\\""}',
};

describe('wire codec', () => {
  it('round-trips a wire message through NATS headers and payload', () => {
    const { headers, data } = encodeWire(message);
    expect(decodeWire(headers, data, { id: 'x', channel: 'y' })).toEqual(message);
    expect(new TextDecoder().decode(data)).toBe(message.body);
  });

  it('sets Nats-Msg-Id to the de-duplication id, which a replay changes', () => {
    expect(encodeWire(message).headers.get('Nats-Msg-Id')).toBe(encodeURIComponent(message.id));
    expect(encodeWire(replayedWire(message)).headers.get('Nats-Msg-Id')).toBe(
      encodeURIComponent(`${message.id}:replay:1`),
    );
  });

  it('decodes a message that Ferry did not publish, so it can be dead-lettered', () => {
    const decoded = decodeWire(undefined, new TextEncoder().encode('raw'), { id: 'S:5', channel: 'Order' });
    expect(decoded).toEqual({ id: 'S:5', channel: 'Order', partitionKey: '', headers: {}, body: 'raw' });
  });
});
