import { newMessageId, type WireMessage } from '@ferry/core';
import { deferred, sleep, waitFor } from '@ferry/testing';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { NatsBroker } from './nats.broker.js';
import { dropNamespace, uniqueNamespace } from './nats.fixtures.js';
import type { NatsBrokerEvent, NatsBrokerOptions } from './nats.options.js';

const url = inject('servers').nats;
const namespace = uniqueNamespace('handover');

function messages(channel: string, total: number, keys: number): WireMessage[] {
  return Array.from({ length: total }, (_, seq) => ({
    id: newMessageId(),
    channel,
    partitionKey: `ticket-${seq % keys}`,
    headers: { kind: 'event', type: 'TicketTested', createdAt: new Date().toISOString() },
    body: JSON.stringify({ seq }),
  }));
}

/** Partitions each broker owns, followed through its events. */
function ownership() {
  const owned = new Set<number>();
  const onEvent = (event: NatsBrokerEvent) => {
    if (event.kind === 'partition-acquired') owned.add(event.partition);
    if (event.kind === 'partition-released' || event.kind === 'partition-lost') owned.delete(event.partition);
  };
  return { owned, onEvent };
}

/** Each key's messages, in the order they were first completed, must be in publish order. */
function expectPerKeyOrder(completed: Array<{ key: string; seq: number; id: string }>) {
  const seen = new Set<string>();
  const byKey = new Map<string, number[]>();
  for (const { key, seq, id } of completed) {
    if (seen.has(id)) continue;
    seen.add(id);
    byKey.set(key, [...(byKey.get(key) ?? []), seq]);
  }
  for (const [key, seqs] of byKey) expect(seqs, key).toEqual([...seqs].sort((a, b) => a - b));
}

describe.skipIf(!url)('NatsBroker groups across connections', () => {
  const base: NatsBrokerOptions = { servers: url ?? '', namespace, leaseTtlMs: 3000, ackWaitMs: 2000 };

  afterAll(async () => {
    if (url) await dropNamespace(url, namespace);
  });

  it('two members share partitions, never run one key at once, and a closing member hands over', async () => {
    const a = ownership();
    const b = ownership();
    const brokerA = await NatsBroker.connect({ ...base, onEvent: a.onEvent });
    const brokerB = await NatsBroker.connect({ ...base, onEvent: b.onEvent });
    const channel = 'Kitchen.pair';
    const total = 3000;
    const completed: Array<{ key: string; seq: number; id: string }> = [];
    const byMember = [0, 0];
    const busy = new Set<string>();
    let overlaps = 0;
    const handler = (member: number) => async (d: { message: WireMessage }) => {
      const key = d.message.partitionKey;
      if (busy.has(key)) overlaps++;
      busy.add(key);
      await sleep(Math.random() * 2);
      busy.delete(key);
      byMember[member]!++;
      completed.push({ key, seq: (JSON.parse(d.message.body) as { seq: number }).seq, id: d.message.id });
    };
    const subA = await brokerA.subscribe({ channel, group: 'pair', concurrency: 8 }, handler(0));
    const subB = await brokerB.subscribe({ channel, group: 'pair', concurrency: 8 }, handler(1));
    await waitFor(
      () => a.owned.size > 0 && b.owned.size > 0 && a.owned.size + b.owned.size === 16,
      'both members to own a share of the 16 partitions',
      15_000,
    );

    const sent = messages(channel, total, 40);
    const publishing = (async () => {
      for (let i = 0; i < total; i += 100) {
        await brokerA.publish(sent.slice(i, i + 100));
        await sleep(20);
      }
    })();
    await waitFor(() => completed.length >= total / 3, 'a third handled', 20_000);
    await subA.close();
    expect(a.owned.size, 'the closed member released everything').toBe(0);
    await waitFor(() => b.owned.size === 16, 'the remaining member to own every partition', 15_000);
    await publishing;
    await waitFor(() => new Set(completed.map((c) => c.id)).size === total, `all ${total} handled`, 30_000);
    await subB.close();

    expect(overlaps, 'two handlers of one key at once').toBe(0);
    expect(byMember[0]).toBeGreaterThan(0);
    expect(byMember[1]).toBeGreaterThan(0);
    // A graceful handover acknowledges or returns every message: no duplicate deliveries.
    expect(completed.length).toBe(total);
    expectPerKeyOrder(completed);
    await Promise.all([brokerA.close(), brokerB.close()]);
  }, 90_000);

  it('a member that vanishes without leaving: its partitions move after the lease and its unacknowledged messages come first', async () => {
    const b = ownership();
    // JetStream redelivers A's messages only after ackWait, well after A's leases ran out: without
    // recovery, B would handle later messages of a key before them.
    const crashy = { ...base, leaseTtlMs: 2000, ackWaitMs: 6000 };
    const brokerA = await NatsBroker.connect(crashy);
    const brokerB = await NatsBroker.connect({ ...crashy, onEvent: b.onEvent });
    const channel = 'Kitchen.crash';
    const total = 600;
    const completed: Array<{ key: string; seq: number; id: string; member: string }> = [];
    let dying = false;
    const hang = deferred();
    const subA = await brokerA.subscribe({ channel, group: 'crash', concurrency: 8 }, async (d) => {
      if (dying) return hang.promise; // the process is gone: this handler never finishes
      await sleep(Math.random() * 3);
      if (dying) return hang.promise;
      const { seq } = JSON.parse(d.message.body) as { seq: number };
      completed.push({ key: d.message.partitionKey, seq, id: d.message.id, member: 'a' });
    });
    await brokerA.publish(messages(channel, total, 12));
    await waitFor(() => completed.length >= 100, 'member A to handle some', 15_000);
    // A dies: no lease release, no nak, its held messages stay unacknowledged.
    dying = true;
    await brokerA.connection.close();
    let redelivered = 0;
    const subB = await brokerB.subscribe({ channel, group: 'crash', concurrency: 8 }, async (d) => {
      if (d.deliveryCount > 1) redelivered++;
      await sleep(Math.random() * 2);
      const { seq } = JSON.parse(d.message.body) as { seq: number };
      completed.push({ key: d.message.partitionKey, seq, id: d.message.id, member: 'b' });
    });
    await waitFor(() => new Set(completed.map((c) => c.id)).size === total, `all ${total} handled`, 40_000);
    expect(b.owned.size).toBe(16);
    expect(redelivered, 'messages A held unacknowledged, redelivered to B').toBeGreaterThan(0);
    expect(completed.filter((c) => c.member === 'b').length).toBeGreaterThan(0);
    expectPerKeyOrder(completed);
    hang.resolve();
    await subB.close();
    await subA.close();
    await Promise.all([brokerA.close(), brokerB.close()]);
  }, 90_000);
});
