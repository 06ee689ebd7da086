import { newMessageId, replayedWire, type WireMessage } from '@ferry/core';
import { waitFor } from '@ferry/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NatsBroker } from './nats.broker.js';
import { dropNamespace, uniqueNamespace } from './nats.fixtures.js';
import type { NatsBrokerEvent } from './nats.options.js';

const url = inject('servers').nats;
const namespace = uniqueNamespace('dlq');

function message(channel: string, key: string, n: number): WireMessage {
  return {
    id: newMessageId(),
    channel,
    partitionKey: key,
    headers: { kind: 'event', type: 'Poisoned', createdAt: new Date().toISOString() },
    body: JSON.stringify({ n }),
  };
}

describe.skipIf(!url)('NatsBroker dead letters and de-duplication', () => {
  let broker: NatsBroker;
  const events: NatsBrokerEvent[] = [];

  beforeAll(async () => {
    broker = await NatsBroker.connect({
      servers: url!,
      namespace,
      leaseTtlMs: 3000,
      ackWaitMs: 5000,
      maxDeliveries: 3,
      retryDelayMs: 10,
      onEvent: (event) => events.push(event),
    });
  });

  afterAll(async () => {
    await broker?.close();
    if (url) await dropNamespace(url, namespace);
  });

  it('dead-letters a message that keeps failing after maxDeliveries, with its reason, and goes on with its key', async () => {
    const channel = 'Billing.poison';
    const log: string[] = [];
    const sub = await broker.subscribe({ channel, group: 'billing' }, async (d) => {
      const { n } = JSON.parse(d.message.body) as { n: number };
      log.push(`${n}#${d.deliveryCount}`);
      if (n === 1) throw new Error('cannot bill');
    });
    const poison = message(channel, 'acct-1', 1);
    await broker.publish([poison, message(channel, 'acct-1', 2)]);
    await waitFor(() => log.includes('2#1'), 'the next message of the key', 10_000);
    await sub.close();
    expect(log).toEqual(['1#1', '1#2', '1#3', '2#1']);
    const letters = await broker.deadLetters('billing');
    expect(letters).toHaveLength(1);
    expect(letters[0]!.message).toEqual(poison);
    expect(letters[0]!.deliveries).toBe(3);
    expect(letters[0]!.reason).toContain('Error: cannot bill');
    expect(events.some((e) => e.kind === 'dead-lettered' && e.messageId === poison.id)).toBe(true);
  });

  it('stores a re-published message once, and a replayed one again', async () => {
    const channel = 'Billing.dedup';
    const batch = [message(channel, 'a', 1), message(channel, 'b', 2)];
    await broker.publish(batch);
    await broker.publish(batch);
    const stream = () =>
      broker.manager.streams.info(`${namespace}_Billing`, {
        subjects_filter: `${namespace}.Billing.dedup.>`,
      });
    const countOf = async () => {
      const info = await stream();
      return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
    };
    expect(await countOf()).toBe(2);
    await broker.publish([replayedWire(batch[0]!)]);
    expect(await countOf()).toBe(3);
    const got: WireMessage[] = [];
    const sub = await broker.subscribe({ channel, group: 'dedup' }, async (d) => void got.push(d.message));
    await waitFor(() => got.length === 3, 'three deliveries', 10_000);
    await sub.close();
    expect(got.filter((m) => m.id === batch[0]!.id).map((m) => m.headers.replayCount)).toEqual([
      undefined,
      '1',
    ]);
  });
});
