import { newMessageId, type WireMessage } from '@ferry/core';
import { waitFor } from '@ferry/testing';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { consumerName, streamName } from './naming.js';
import { NatsBroker } from './nats.broker.js';
import { dropNamespace, uniqueNamespace } from './nats.fixtures.js';
import type { NatsBrokerEvent } from './nats.options.js';

const url = inject('servers').nats;
const namespace = uniqueNamespace('recovery');

const ticket = (channel: string, n: number): WireMessage => ({
  id: newMessageId(),
  channel,
  partitionKey: 'ticket-1',
  headers: { kind: 'event', type: 'TicketTested', createdAt: new Date().toISOString() },
  body: JSON.stringify({ n }),
});

describe.skipIf(!url)('NatsBroker partition recovery', () => {
  afterAll(async () => {
    if (url) await dropNamespace(url, namespace);
  });

  it('restarts the consumer from its ack floor after ten ack waits, keeping key order, when the server counts an unacknowledged message that never reaches it', async () => {
    const options = { servers: url ?? '', namespace, partitions: 1, ackWaitMs: 1000, leaseTtlMs: 1000 };
    const channel = 'Kitchen.recovery';
    const group = 'kitchen';
    // The group's consumer exists (a first member subscribed and left); two messages of one key.
    const first = await NatsBroker.connect(options);
    await (await first.subscribe({ channel, group }, async () => {})).close();
    const [held, next] = [ticket(channel, 1), ticket(channel, 2)];
    await first.publish([held, next]);
    // Something outside the group takes the first and keeps it in progress: the server counts it
    // unacknowledged and never redelivers it (as nats-server < 2.9.22 could after a restart).
    const outsider = await connect({ servers: url });
    const consumer = await jetstream(outsider).consumers.get(
      streamName(namespace, channel),
      consumerName(group, channel, 0),
    );
    const taken = await consumer.next({ expires: 2000 });
    expect(taken?.headers?.get('Nats-Msg-Id') ?? taken?.seq).toBeDefined();
    const keepInProgress = setInterval(() => taken?.working(), 200);

    const events: NatsBrokerEvent[] = [];
    const second = await NatsBroker.connect({ ...options, onEvent: (e) => events.push(e) });
    const handled: string[] = [];
    const startedAt = performance.now();
    const sub = await second.subscribe({ channel, group }, async ({ message }) => {
      handled.push(message.id);
    });
    try {
      await waitFor(() => handled.includes(next.id), 'the second message, after the restart', 15_000);
      // Nothing ran while the server's count was out of reach; then both, in stream order.
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(10_000);
      expect(handled).toEqual([held.id, next.id]);
      const restarts = events.filter((e) => e.kind === 'consumer-restarted');
      expect(restarts).toEqual([
        expect.objectContaining({ group, channel, partition: 0, fromSequence: taken!.seq }),
      ]);
      // The new consumer delivers from the ack floor and, once both are acknowledged, counts none.
      const info = () =>
        jetstream(outsider)
          .consumers.get(streamName(namespace, channel), consumerName(group, channel, 0))
          .then((c) => c.info());
      expect((await info()).config.deliver_policy).toBe('by_start_sequence');
      await waitFor(async () => (await info()).num_ack_pending === 0, 'both acknowledged', 5000);
    } finally {
      clearInterval(keepInProgress);
      await sub.close();
      await second.close();
      await first.close();
      await outsider.close();
    }
  }, 45_000);
});
