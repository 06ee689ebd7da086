import type { RabbitMqBroker, RabbitMqEvent } from '@ferry/rabbitmq';
import { deferred, sleep, TcpProxy, uniqueChannel, waitFor, wire } from '@ferry/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RabbitMqPublishError } from './confirm.publisher.js';
import { rabbitFixture } from './testing/rabbitmq-fixture.js';

const url = inject('servers').rabbitmq;

describe.skipIf(!url)('RabbitMQ broker: connection loss', () => {
  const fixture = rabbitFixture(url ?? '', 'loss');
  let proxy: TcpProxy;
  let proxied: string;

  beforeAll(async () => {
    const target = new URL(url!);
    proxy = await TcpProxy.start(target.hostname, Number(target.port) || 5672);
    proxied = proxy.route(url!);
  });

  afterAll(async () => {
    await proxy?.close();
    await fixture.teardown();
  });

  it('handles every message when all connections are severed mid-run, keeping each key in order', async () => {
    // Each event is recorded with the broker's readiness at the moment it was reported.
    const events: Array<{ kind: RabbitMqEvent['kind']; ready: boolean }> = [];
    const brokers: RabbitMqBroker[] = [];
    const recorder = (index: number) => (event: RabbitMqEvent) =>
      void events.push({ kind: event.kind, ready: brokers[index]?.isReady() ?? true });
    const consumer = await fixture.connect({ url: proxied, onEvent: recorder(0), prefetch: 16 });
    const producer = await fixture.connect({ url: proxied, onEvent: recorder(1) });
    brokers.push(consumer, producer);
    const lost = () => events.filter((e) => e.kind === 'connection-lost').length;
    const channel = uniqueChannel('loss');
    const handled = new Map<string, number>();
    const firstSeen = new Map<string, number[]>();
    const sub = await consumer.subscribe({ channel, group: 'survivors', concurrency: 8 }, async (d) => {
      await sleep(Math.random() * 2);
      const { seq } = JSON.parse(d.message.body) as { seq: number };
      const times = handled.get(d.message.id) ?? 0;
      handled.set(d.message.id, times + 1);
      if (times === 0)
        firstSeen.set(d.message.partitionKey, [...(firstSeen.get(d.message.partitionKey) ?? []), seq]);
    });

    // The producer publishes batch after batch while the proxy severs every connection four
    // times, with the consumer holding a backlog: publishes and deliveries are in flight each time.
    const keys = 20;
    let seq = 0;
    const sent: string[] = [];
    let producing = true;
    const producingDone = (async () => {
      while (producing) {
        const messages = Array.from({ length: keys * 3 }, (_, i) => {
          if (i % keys === 0) seq++;
          return wire(channel, `key-${i % keys}`, { seq });
        });
        await producer.publish(messages);
        sent.push(...messages.map((m) => m.id));
      }
    })();
    for (let cut = 1; cut <= 4; cut++) {
      await waitFor(() => handled.size > 0 && handled.size < sent.length, 'a backlog to build', 10_000);
      await sleep(150);
      proxy.sever();
      await waitFor(() => lost() === 2 * cut, 'both brokers to notice the loss', 5000);
      await waitFor(() => consumer.isReady() && producer.isReady(), 'both brokers ready again', 10_000);
    }
    await sleep(200);
    producing = false;
    await producingDone;
    await waitFor(() => sent.every((id) => handled.has(id)), 'every message handled', 60_000);
    await waitFor(() => consumer.isReady() && producer.isReady(), 'both ready again', 10_000);
    await sub.close();

    expect(handled.size).toBe(sent.length);
    for (const [key, seqs] of firstSeen) {
      expect(seqs, key).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size, key).toBe(seqs.length);
    }
    // Not ready from the loss until everything is restored, ready again once it is.
    expect(events.filter((e) => e.kind === 'connection-lost')).toEqual(
      Array.from({ length: 8 }, () => ({ kind: 'connection-lost', ready: false })),
    );
    expect(events.filter((e) => e.kind === 'reconnected').map((e) => e.ready)).toEqual(
      Array.from({ length: 8 }, () => true),
    );
    const duplicates = [...handled.values()].reduce((n, times) => n + times - 1, 0);
    console.log(`[rabbitmq] connection loss: ${sent.length} messages, ${duplicates} redelivered duplicates`);
  });

  it('a publish during an outage waits for the connection and resolves once confirmed', async () => {
    const broker = await fixture.connect({ url: proxied });
    const channel = uniqueChannel('outage');
    const got = new Set<string>();
    const sub = await broker.subscribe({ channel, group: 'g' }, async (d) => void got.add(d.message.id));
    proxy.refuse();
    await waitFor(() => !broker.isReady(), 'not ready', 2000);
    const messages = Array.from({ length: 100 }, (_, i) => wire(channel, `k${i % 7}`, { i }));
    let settled = false;
    const publishing = broker.publish(messages).finally(() => {
      settled = true;
    });
    await sleep(700);
    expect(settled).toBe(false);
    expect(broker.isReady()).toBe(false);
    proxy.accept();
    await publishing;
    await waitFor(() => messages.every((m) => got.has(m.id)), 'messages published in the outage', 10_000);
    await sub.close();
  });

  it('a publish that outlasts publishTimeoutMs fails and names what was not confirmed', async () => {
    const broker = await fixture.connect({ url: proxied, publishTimeoutMs: 400 });
    const channel = uniqueChannel('timeout');
    await broker.declareGroup(channel, 'g');
    proxy.refuse();
    try {
      await waitFor(() => !broker.isReady(), 'not ready', 2000);
      const started = Date.now();
      const error = await broker.publish([wire(channel, 'k'), wire(channel, 'k')]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RabbitMqPublishError);
      expect((error as Error).message).toMatch(/2 of 2 message\(s\) not confirmed by RabbitMQ within 400 ms/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      proxy.accept();
    }
    await waitFor(() => broker.isReady(), 'ready again', 10_000);
  });

  it('a member whose connection dies leaves its unsettled messages to another member', async () => {
    const dying = await fixture.connect({ url: proxied });
    const survivor = await fixture.connect();
    const channel = uniqueChannel('death');
    const byDying = new Set<string>();
    const bySurvivor = new Set<string>();
    const release = deferred();
    await dying.subscribe({ channel, group: 'g', concurrency: 4 }, async (d) => {
      byDying.add(d.message.id);
      await release.promise; // Never finishes before its connection dies.
    });
    const survivorSub = await survivor.subscribe({ channel, group: 'g' }, async (d) => {
      bySurvivor.add(d.message.id);
    });
    const messages = Array.from({ length: 60 }, (_, i) => wire(channel, `k${i % 6}`, { i }));
    await survivor.publish(messages);
    await waitFor(() => byDying.size >= 4, 'the first member to take messages', 5000);
    proxy.refuse();
    try {
      await waitFor(() => messages.every((m) => bySurvivor.has(m.id)), 'the survivor to handle all', 10_000);
    } finally {
      release.resolve();
      proxy.accept();
    }
    await survivorSub.close();
    expect(bySurvivor.size).toBe(60);
  });
});
