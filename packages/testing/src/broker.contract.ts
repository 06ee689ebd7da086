import { type Broker, type Delivery, newMessageId, type WireMessage } from '@ferry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deferred, sleep, waitFor } from './wait-for.js';

/** How the broker contract suite gets brokers of one adapter. */
export interface BrokerContractFactory {
  /** Opens a broker connection; called once for the suite's main broker and again for second members. */
  connect(): Promise<Broker>;
  /** Called after the suite, to drop what it created. */
  teardown?(): Promise<void>;
  /** How long a test may wait for deliveries (default 10 s). */
  timeoutMs?: number;
}

let counter = 0;
/** A channel name no other test uses. */
export function uniqueChannel(prefix = 'contract'): string {
  counter++;
  return `${prefix}.${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

/** A wire message for tests. */
export function wire(
  channel: string,
  partitionKey: string,
  body: unknown = {},
  headers: Record<string, string> = {},
): WireMessage {
  const id = newMessageId();
  return {
    id,
    channel,
    partitionKey,
    headers: { kind: 'event', type: 'ContractTested', createdAt: new Date().toISOString(), ...headers },
    body: JSON.stringify(body),
  };
}

/**
 * The behaviour every Broker adapter must have (STYLE.md 3). An adapter is done when this
 * passes: `testBroker('postgres', { connect: () => ... })`.
 */
export function testBroker(name: string, factory: BrokerContractFactory): void {
  describe(`Broker contract: ${name}`, () => {
    let broker: Broker;
    const opened: Broker[] = [];
    const timeout = factory.timeoutMs ?? 10_000;
    const connect = async () => {
      const b = await factory.connect();
      opened.push(b);
      return b;
    };

    beforeAll(async () => {
      broker = await connect();
    });

    afterAll(async () => {
      for (const b of opened.reverse()) await b.close();
      await factory.teardown?.();
    });

    it('reports ready once connected', () => {
      expect(broker.isReady()).toBe(true);
    });

    it('delivers every published message to a subscribed group, with headers and body intact', async () => {
      const channel = uniqueChannel();
      const received: WireMessage[] = [];
      const sub = await broker.subscribe({ channel, group: 'g1' }, async (d) => {
        received.push(d.message);
      });
      const sent = Array.from({ length: 50 }, (_, i) =>
        wire(
          channel,
          `k${i % 5}`,
          { i, text: 'zürich ✓ "quoted"' },
          { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` },
        ),
      );
      await broker.publish(sent);
      await waitFor(() => new Set(received.map((m) => m.id)).size === 50, '50 deliveries', timeout);
      await sub.close();
      const byId = new Map(received.map((m) => [m.id, m]));
      for (const message of sent) {
        const got = byId.get(message.id)!;
        expect(got.channel).toBe(channel);
        expect(got.partitionKey).toBe(message.partitionKey);
        expect(got.headers).toEqual(message.headers);
        expect(JSON.parse(got.body)).toEqual(JSON.parse(message.body));
      }
    });

    it('publish-subscribe: each group gets every message', async () => {
      const channel = uniqueChannel();
      const a = new Set<string>();
      const b = new Set<string>();
      const subA = await broker.subscribe({ channel, group: 'ga' }, async (d) => void a.add(d.message.id));
      const subB = await broker.subscribe({ channel, group: 'gb' }, async (d) => void b.add(d.message.id));
      const sent = Array.from({ length: 20 }, (_, i) => wire(channel, `k${i}`));
      await broker.publish(sent);
      await waitFor(() => a.size === 20 && b.size === 20, 'both groups to get 20', timeout);
      await Promise.all([subA.close(), subB.close()]);
    });

    it('point-to-point: two members of one group share the messages, each handled by one member', async () => {
      const channel = uniqueChannel();
      const other = await connect();
      const byMember: Array<string[]> = [[], []];
      const subs = await Promise.all(
        [broker, other].map((b, m) =>
          b.subscribe({ channel, group: 'workers' }, async (d) => {
            byMember[m]!.push(d.message.id);
            await sleep(2);
          }),
        ),
      );
      const sent = Array.from({ length: 200 }, (_, i) => wire(channel, `k${i % 40}`));
      await broker.publish(sent);
      await waitFor(
        () => new Set([...byMember[0]!, ...byMember[1]!]).size === 200,
        'all 200 handled',
        timeout * 2,
      );
      await Promise.all(subs.map((s) => s.close()));
      const all = [...byMember[0]!, ...byMember[1]!];
      expect(new Set(all).size).toBe(200);
      // No failures and no crashes: nothing may have been delivered twice.
      expect(all.length).toBe(200);
    });

    it('invariant: messages of one partition key are handled in order, never two at once', async () => {
      const channel = uniqueChannel();
      const seen = new Map<string, number[]>();
      const busy = new Set<string>();
      let overlap = false;
      const sub = await broker.subscribe({ channel, group: 'ordered', concurrency: 8 }, async (d) => {
        const key = d.message.partitionKey;
        if (busy.has(key)) overlap = true;
        busy.add(key);
        await sleep(Math.random() * 3);
        const { seq } = JSON.parse(d.message.body) as { seq: number };
        seen.set(key, [...(seen.get(key) ?? []), seq]);
        busy.delete(key);
      });
      const sent: WireMessage[] = [];
      for (let seq = 0; seq < 30; seq++)
        for (let k = 0; k < 10; k++) sent.push(wire(channel, `key-${k}`, { seq }));
      for (let i = 0; i < sent.length; i += 50) await broker.publish(sent.slice(i, i + 50));
      await waitFor(
        () => [...seen.values()].reduce((n, s) => n + s.length, 0) >= 300,
        '300 deliveries',
        timeout * 2,
      );
      await sub.close();
      expect(overlap).toBe(false);
      for (const [key, seqs] of seen) expect(seqs, key).toEqual(Array.from({ length: 30 }, (_, i) => i));
    });

    it('invariant: messages of different partition keys are handled in parallel', async () => {
      const channel = uniqueChannel();
      const bHandled = deferred();
      let aDone = false;
      const sub = await broker.subscribe({ channel, group: 'parallel', concurrency: 4 }, async (d) => {
        if (d.message.partitionKey === 'a') {
          // Finishes only once b has been handled: a broker that serialised keys would stall here.
          await Promise.race([bHandled.promise, sleep(timeout)]);
          aDone = true;
        } else bHandled.resolve();
      });
      await broker.publish([wire(channel, 'a'), wire(channel, 'b')]);
      await waitFor(() => aDone, 'a to finish', timeout);
      await sub.close();
      expect(await Promise.race([bHandled.promise.then(() => true), sleep(1).then(() => false)])).toBe(true);
    });

    it('redelivers a rejected message, before later messages of its key', async () => {
      const channel = uniqueChannel();
      const log: string[] = [];
      let failures = 0;
      const sub = await broker.subscribe({ channel, group: 'retry' }, async (d: Delivery) => {
        const { n } = JSON.parse(d.message.body) as { n: number };
        if (n === 1 && failures < 2) {
          failures++;
          log.push(`fail ${n} (delivery ${d.deliveryCount})`);
          throw new Error('transient');
        }
        log.push(`ok ${n} (delivery ${d.deliveryCount})`);
      });
      await broker.publish([wire(channel, 'k', { n: 1 }), wire(channel, 'k', { n: 2 })]);
      await waitFor(() => log.some((l) => l.startsWith('ok 2')), 'message 2', timeout);
      await sub.close();
      expect(log).toEqual([
        'fail 1 (delivery 1)',
        'fail 1 (delivery 2)',
        'ok 1 (delivery 3)',
        'ok 2 (delivery 1)',
      ]);
    });

    it('keeps messages for a group while none of its members is subscribed', async () => {
      const channel = uniqueChannel();
      const first = new Set<string>();
      const sub1 = await broker.subscribe(
        { channel, group: 'durable' },
        async (d) => void first.add(d.message.id),
      );
      await broker.publish([wire(channel, 'k')]);
      await waitFor(() => first.size === 1, 'first message', timeout);
      await sub1.close();
      const later = [wire(channel, 'k'), wire(channel, 'j')];
      await broker.publish(later);
      const second = new Set<string>();
      const other = await connect();
      const sub2 = await other.subscribe(
        { channel, group: 'durable' },
        async (d) => void second.add(d.message.id),
      );
      await waitFor(() => later.every((m) => second.has(m.id)), 'messages published while away', timeout);
      await sub2.close();
    });

    it('hands a closed member’s unsettled messages to another member', async () => {
      const channel = uniqueChannel();
      const other = await connect();
      const release = deferred();
      const firstGot: string[] = [];
      const sub1 = await broker.subscribe({ channel, group: 'handover' }, async (d) => {
        firstGot.push(d.message.id);
        await release.promise;
        throw new Error('member shutting down before it finished');
      });
      await broker.publish([wire(channel, 'k', { n: 1 })]);
      await waitFor(() => firstGot.length === 1, 'first member to take the message', timeout);
      const closing = sub1.close();
      const secondGot: string[] = [];
      const sub2 = await other.subscribe(
        { channel, group: 'handover' },
        async (d) => void secondGot.push(d.message.id),
      );
      release.resolve();
      await closing;
      await waitFor(() => secondGot.length >= 1, 'second member to get the message', timeout * 2);
      await sub2.close();
      expect(secondGot[0]).toBe(firstGot[0]);
    });

    it('publishes a large batch in one call', async () => {
      const channel = uniqueChannel();
      const got = new Set<string>();
      const sub = await broker.subscribe(
        { channel, group: 'batch', concurrency: 32 },
        async (d) => void got.add(d.message.id),
      );
      const sent = Array.from({ length: 1000 }, (_, i) => wire(channel, `k${i % 100}`, { i }));
      await broker.publish(sent);
      await waitFor(() => got.size === 1000, '1000 deliveries', timeout * 2);
      await sub.close();
    });
  });
}
