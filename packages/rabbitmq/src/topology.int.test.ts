import { type Delivery, MemoryDeadLetterStore } from '@ferry/core';
import { deferred, sleep, uniqueChannel, waitFor, wire } from '@ferry/testing';
import amqp from 'amqplib';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { RabbitMqPublishError } from './confirm.publisher.js';
import { TopologyNames } from './names.js';
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
