import type { Delivery } from '@ferry/core';
import { sleep, uniqueChannel, waitFor, wire } from '@ferry/testing';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { rabbitFixture } from './testing/rabbitmq-fixture.js';

const url = inject('servers').rabbitmq;

describe.skipIf(!url)('RabbitMQ broker: a group over several connections', () => {
  const fixture = rabbitFixture(url ?? '', 'group');

  afterAll(() => fixture.teardown());

  it('spreads partitions over two members, keeps per-key order, and hands over when one closes', async () => {
    const options = { rebalanceIntervalMs: 100, partitions: 8 };
    const [first, second] = await Promise.all([fixture.connect(options), fixture.connect(options)]);
    const channel = uniqueChannel('handover');
    const log: Array<{ member: number; key: string; seq: number }> = [];
    const busy = new Set<string>();
    let overlaps = 0;
    const handler = (member: number) => async (d: Delivery) => {
      const key = d.message.partitionKey;
      if (busy.has(key)) overlaps++;
      busy.add(key);
      await sleep(Math.random() * 4);
      log.push({ member, key, seq: (JSON.parse(d.message.body) as { seq: number }).seq });
      busy.delete(key);
    };
    const subs = [
      await first!.subscribe({ channel, group: 'kitchen', concurrency: 8 }, handler(0)),
      await second!.subscribe({ channel, group: 'kitchen', concurrency: 8 }, handler(1)),
    ];
    const keys = 24;
    const rounds = 60;
    const publishing = (async () => {
      for (let seq = 0; seq < rounds; seq++) {
        await first!.publish(Array.from({ length: keys }, (_, k) => wire(channel, `order-${k}`, { seq })));
        await sleep(25);
      }
    })();
    // The first member joined every partition first; rebalancing hands some to the second.
    await waitFor(() => log.some((e) => e.member === 1), 'the second member to get partitions', 10_000);
    await waitFor(() => log.length >= (keys * rounds) / 2, 'half of the messages', 20_000);
    const bothBefore = new Set(log.slice(-100).map((e) => e.member)).size;
    await subs[0]!.close(); // Mid-run: handlers in flight finish, the rest goes to the other member.
    const handedOverAt = log.length;
    await publishing;
    await waitFor(() => log.length >= keys * rounds, 'every message', 20_000);
    await subs[1]!.close();

    expect(overlaps).toBe(0);
    expect(bothBefore).toBe(2);
    expect(log.length).toBe(keys * rounds); // Graceful hand-overs redeliver nothing that was handled.
    for (let k = 0; k < keys; k++) {
      const seqs = log.filter((e) => e.key === `order-${k}`).map((e) => e.seq);
      expect(seqs, `order-${k}`).toEqual(Array.from({ length: rounds }, (_, i) => i));
    }
    expect(log.slice(handedOverAt).every((e) => e.member === 1)).toBe(true);
  });

  it('keeps what is published while the group has no member, from its first subscribe on', async () => {
    const producer = await fixture.connect();
    const channel = uniqueChannel('kept');
    await producer.declareGroup(channel, 'late');
    const messages = Array.from({ length: 50 }, (_, i) => wire(channel, `k${i % 5}`, { i }));
    await producer.publish(messages);
    const consumer = await fixture.connect();
    const got: string[] = [];
    const sub = await consumer.subscribe(
      { channel, group: 'late' },
      async (d) => void got.push(d.message.id),
    );
    await waitFor(() => got.length >= 50, 'the kept messages', 10_000);
    await sub.close();
    expect(new Set(got)).toEqual(new Set(messages.map((m) => m.id)));
  });
});
