import { type Delivery, MemoryDeadLetterStore } from '@ferry/core';
import { deferred, sleep, uniqueChannel, waitFor, wire } from '@ferry/testing';
import amqp from 'amqplib';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { RabbitMqPublishError } from './confirm.publisher.js';
import { TopologyNames } from './names.js';
import { partitionOf } from './partitioning.js';
import { connectRabbitMq } from './rabbitmq.broker.js';
import type { RabbitMqEvent } from './rabbitmq.options.js';
import { rabbitFixture } from './testing/rabbitmq-fixture.js';
import { PartitionCountMismatchError } from './topology.js';

const url = inject('servers').rabbitmq;

describe.skipIf(!url)('RabbitMQ broker: topology and the dead-letter backstop', () => {
  const fixture = rabbitFixture(url ?? '', 'topology');

  afterAll(() => fixture.teardown());

  it('fails to connect with a message naming the server when nothing listens there', async () => {
    const error = await connectRabbitMq({ url: 'amqp://guest:secret@127.0.0.1:1' }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /^cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1: /,
    );
  });

  it('refuses to change the number of partitions of an existing group', async () => {
    const channel = uniqueChannel('parts');
    await (await fixture.connect({ partitions: 4 })).declareGroup(channel, 'g');
    for (const partitions of [2, 6]) {
      const other = await fixture.connect({ partitions });
      const error = await other.subscribe({ channel, group: 'g' }, async () => {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PartitionCountMismatchError);
      expect((error as Error).message).toContain(partitions === 2 ? 'more than 2' : 'fewer than 6');
    }
  });

  it('refuses a publisher or a new group whose partition count differs from the channel’s, naming both', async () => {
    const channel = uniqueChannel('count');
    const eight = await fixture.connect({ partitions: 8 });
    await eight.publish([wire(channel, 'k')]);
    const four = await fixture.connect({ partitions: 4 });
    const published = await four.publish([wire(channel, 'k')]).catch((e: unknown) => e);
    expect(published).toBeInstanceOf(PartitionCountMismatchError);
    expect((published as Error).message).toContain(
      `channel ${channel} has 8 partitions, but this broker is configured with partitions: 4`,
    );
    const subscribed = await four
      .subscribe({ channel, group: 'fresh' }, async () => {})
      .catch((e: unknown) => e);
    expect(subscribed).toBeInstanceOf(PartitionCountMismatchError);
    expect(subscribed).toMatchObject({ channel, partitions: 4, existing: 8 });
    // The refusals changed nothing: the channel still takes the count it was declared with.
    await eight.publish([wire(channel, 'k')]);
  });

  it('routes every key to the same partition queue before and after the routing is rebuilt, as on a restart', async () => {
    // A restarting RabbitMQ node rebuilds its routing from the stored bindings; the
    // consistent-hash exchange also rebuilt its hash ring then, in whatever order, and moved keys
    // (rabbitmq-server #3386). Here the channel exchange is deleted, bindings and all, and built
    // again in the opposite order by hand; a second broker, as a restarted publisher, then
    // publishes the same keys. Every key's messages must sit in one queue: the one partitionOf names.
    const partitions = 4;
    const names = new TopologyNames(fixture.namespace);
    const channel = uniqueChannel('stable');
    const keys = Array.from({ length: 40 }, (_, k) => `key-${k}`);
    const before = await fixture.connect({ partitions });
    await before.declareGroup(channel, 'g');
    await before.publish(keys.map((key) => wire(channel, key, { round: 1 })));

    const admin = await amqp.connect(url!);
    try {
      const ch = await admin.createChannel();
      const exchange = names.channelExchange(channel);
      await ch.deleteExchange(exchange);
      await ch.assertExchange(exchange, 'direct', { durable: true, arguments: { 'x-ferry-partitions': 4 } });
      for (let i = partitions - 1; i >= 0; i--) {
        await ch.bindQueue(names.partitionQueue(channel, 'g', i), exchange, String(i));
      }
      const after = await fixture.connect({ partitions });
      await after.declareGroup(channel, 'g');
      await after.publish(keys.map((key) => wire(channel, key, { round: 2 })));

      // Read with consumers (quorum queues with single-active-consumer refuse basic.get).
      const queueOf = new Map<string, number[]>();
      let read = 0;
      for (let i = 0; i < partitions; i++) {
        await ch.consume(
          names.partitionQueue(channel, 'g', i),
          (got) => {
            if (got === null) return;
            const key = String(got.properties.headers?.['ferry-partition-key']);
            queueOf.set(key, [...(queueOf.get(key) ?? []), i]);
            read++;
          },
          { noAck: true },
        );
      }
      await waitFor(() => read === keys.length * 2, 'both rounds', 10_000);
      for (const key of keys) {
        const p = partitionOf(key, partitions);
        expect(queueOf.get(key), key).toEqual([p, p]);
      }
      expect(new Set(keys.map((key) => partitionOf(key, partitions))).size).toBe(partitions);
    } finally {
      await admin.close();
    }
  });

  it('fails a publish at once when RabbitMQ refuses it, or when a message cannot be encoded', async () => {
    const broker = await fixture.connect();
    const channel = uniqueChannel('refused');
    const admin = await amqp.connect(url!);
    const ch = await admin.createChannel();
    await ch.assertExchange(new TopologyNames(fixture.namespace).channelExchange(channel), 'topic', {
      durable: true,
    });
    await admin.close();
    const started = Date.now();
    const refused = await broker.publish([wire(channel, 'k')]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RabbitMqPublishError);
    expect((refused as Error).message).toMatch(/refused the publish: .*PRECONDITION_FAILED/);
    const huge = await broker
      .publish([wire(uniqueChannel('huge'), 'k', {}, { big: 'x'.repeat(70_000) })])
      .catch((e: unknown) => e);
    expect(huge).toBeInstanceOf(RangeError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a member whose partition queue disappears keeps trying, with backoff, and resumes once it is back', async () => {
    const channel = uniqueChannel('vanish');
    const failures: RabbitMqEvent[] = [];
    const member = await fixture.connect({
      partitions: 1,
      onEvent: (event) => void (event.kind === 'consumer-failed' && failures.push(event)),
    });
    const got: string[] = [];
    const sub = await member.subscribe({ channel, group: 'g' }, async (d) => void got.push(d.message.id));
    const admin = await amqp.connect(url!);
    const ch = await admin.createChannel();
    await ch.deleteQueue(new TopologyNames(fixture.namespace).partitionQueue(channel, 'g', 0));
    await admin.close();
    await sleep(1500);
    // Reopening fails while the queue is gone, each time after a longer pause (100 ms, 200 ms, …).
    expect(failures.length).toBeGreaterThan(1);
    expect(failures.length).toBeLessThan(10);
    await (await fixture.connect({ partitions: 1 })).declareGroup(channel, 'g');
    const message = wire(channel, 'k');
    await member.publish([message]);
    await waitFor(() => got.includes(message.id), 'the member to consume the queue again', 10_000);
    await sub.close();
  });

  it('carries reserved header names and over-long partition keys exactly', async () => {
    const broker = await fixture.connect();
    const channel = uniqueChannel('headers');
    const got: Delivery[] = [];
    const sub = await broker.subscribe({ channel, group: 'g' }, async (d) => void got.push(d));
    const longKey = `order-${'x'.repeat(300)}`;
    const sent = [
      wire(
        channel,
        longKey,
        { n: 1 },
        { 'x-tenant': 'acme', 'ferry-h-odd': 'a', 'ferry-partition-key': 'b' },
      ),
      wire(channel, longKey, { n: 2 }),
    ];
    await broker.publish(sent);
    await waitFor(() => got.length === 2, 'both messages', 10_000);
    await sub.close();
    expect(got.map((d) => d.message)).toEqual(sent);
  });

  it('dead-letters a message whose members keep leaving without settling it, and moves it to the store', async () => {
    const channel = uniqueChannel('backstop');
    const broker = await fixture.connect({ deliveryLimit: 1 });
    const message = wire(
      channel,
      'k',
      { poison: true },
      { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` },
    );
    const counts: number[] = [];
    // Two members in turn take the message and leave before settling it, as crashing members would.
    for (let round = 0; round < 2; round++) {
      const taken = deferred();
      const leave = deferred();
      const sub = await broker.subscribe({ channel, group: 'crashy' }, async (d) => {
        counts.push(d.deliveryCount);
        taken.resolve();
        await leave.promise;
        throw new Error('member stopping before it finished');
      });
      if (round === 0) await broker.publish([message]);
      await taken.promise;
      const closing = sub.close();
      leave.resolve();
      await closing;
    }
    expect(counts).toEqual([1, 2]);

    const store = new MemoryDeadLetterStore(broker);
    await waitFor(
      async () => (await broker.transferDeadLetters(store)) > 0 || (await store.list()).length > 0,
      'the dead letter',
      10_000,
    );
    const [entry] = await store.list();
    expect(entry?.group).toBe('crashy');
    expect(entry?.message).toEqual(message);
    expect(entry?.reason).toMatch(/^broker: delivery limit reached in queue .*:crashy:\d+$/);
    expect(entry?.attempts).toBe(2);
    expect(await broker.transferDeadLetters(store)).toBe(0);

    // Replayed through the store, the message reaches the group again.
    const replayed = deferred<Delivery>();
    const sub = await broker.subscribe({ channel, group: 'crashy' }, async (d) => replayed.resolve(d));
    await store.replay(entry!.id);
    const delivery = await replayed.promise;
    await sub.close();
    expect(delivery.message.id).toBe(message.id);
    expect(delivery.message.headers.replayCount).toBe('1');
  });
});
