import { newMessageId, type WireMessage } from '@ferry/core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { streamName } from './naming.js';
import { NatsBroker } from './nats.broker.js';
import { dropNamespace, uniqueNamespace } from './nats.fixtures.js';

const url = inject('servers').nats;

const message = (channel: string, n: number): WireMessage => ({
  id: newMessageId(),
  channel,
  partitionKey: `key-${n % 7}`,
  headers: { kind: 'event', type: 'Published', createdAt: new Date().toISOString() },
  body: JSON.stringify({ n }),
});

/**
 * The publisher's own acknowledgement handling (asynchronous publishes, one reply subscription):
 * a batch resolves only once JetStream stored every message, fails when a subject has no stream,
 * and a retried batch is stored once.
 */
describe.skipIf(!url)('NatsBroker publishing', () => {
  const namespace = uniqueNamespace('publisher');
  let broker: NatsBroker;
  beforeAll(async () => {
    broker = await NatsBroker.connect({ servers: url!, namespace, publishWindow: 8 });
  });
  afterAll(async () => {
    await broker?.close();
    await dropNamespace(url!, namespace);
  });

  it('resolves once JetStream has stored the whole batch, more than a window of it', async () => {
    const batch = Array.from({ length: 100 }, (_, n) => message('Stored', n));
    await broker.publish(batch);
    const info = await broker.manager.streams.info(streamName(namespace, 'Stored'));
    expect(info.state.messages).toBe(100);
  });

  it('stores a retried batch once (Nats-Msg-Id)', async () => {
    const batch = Array.from({ length: 20 }, (_, n) => message('Retried', n));
    await broker.publish(batch);
    await broker.publish(batch);
    const info = await broker.manager.streams.info(streamName(namespace, 'Retried'));
    expect(info.state.messages).toBe(20);
  });

  it('fails the batch when its stream was deleted behind its back, then creates it again', async () => {
    const channel = 'Deleted';
    await broker.publish([message(channel, 0)]);
    await broker.manager.streams.delete(streamName(namespace, channel));
    await expect(broker.publish([message(channel, 1), message(channel, 2)])).rejects.toThrow(
      /publish to JetStream failed/,
    );
    await broker.publish([message(channel, 3)]);
    const info = await broker.manager.streams.info(streamName(namespace, channel));
    expect(info.state.messages).toBe(1);
  });
});
