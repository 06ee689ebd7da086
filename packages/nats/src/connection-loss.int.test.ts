import { newMessageId, type WireMessage } from '@ferry/core';
import { sleep, waitFor } from '@ferry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBroker } from './nats.broker.js';
import { canStartNatsServer, NatsServerProcess } from './nats.fixtures.js';

/**
 * The broker survives its server being killed (SIGKILL) and restarted in the middle of a run:
 * it reports not-ready meanwhile, reconnects, resumes publishing and consuming, and in the end
 * every message has been handled, in per-key order, and stored once although batches were
 * published again after failures.
 */
describe.skipIf(!canStartNatsServer())('NatsBroker when its server is killed and restarted', () => {
  let server: NatsServerProcess;

  beforeAll(async () => {
    server = await NatsServerProcess.start();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('loses nothing, keeps per-key order and stores each message once', async () => {
    const options = { servers: server.url, namespace: 'loss', leaseTtlMs: 3000, ackWaitMs: 2000 };
    const consumerSide = await NatsBroker.connect(options);
    const producerSide = await NatsBroker.connect(options);
    const channel = 'Order.loss';
    const keys = 20;
    const total = 2000;
    const sent: WireMessage[] = Array.from({ length: total }, (_, seq) => ({
      id: newMessageId(),
      channel,
      partitionKey: `order-${seq % keys}`,
      headers: { kind: 'event', type: 'OrderTested', createdAt: new Date().toISOString() },
      body: JSON.stringify({ seq }),
    }));

    const firstSeen = new Map<string, number[]>();
    const handled = new Set<string>();
    let deliveries = 0;
    const sub = await consumerSide.subscribe({ channel, group: 'survivor', concurrency: 8 }, async (d) => {
      deliveries++;
      await sleep(Math.random() * 2);
      if (handled.has(d.message.id)) return;
      handled.add(d.message.id);
      const { seq } = JSON.parse(d.message.body) as { seq: number };
      const key = d.message.partitionKey;
      firstSeen.set(key, [...(firstSeen.get(key) ?? []), seq]);
    });

    // A relay's way of publishing: retry a batch until the broker acknowledges all of it.
    let publishFailures = 0;
    const publishing = (async () => {
      for (let i = 0; i < total; i += 50) {
        const batch = sent.slice(i, i + 50);
        for (;;) {
          try {
            await producerSide.publish(batch);
            break;
          } catch {
            publishFailures++;
            await sleep(100);
          }
        }
        await sleep(5);
      }
    })();

    await waitFor(() => handled.size >= total / 4, 'a quarter of the messages before the crash', 20_000);
    await server.kill();
    await waitFor(() => !consumerSide.isReady() && !producerSide.isReady(), 'not-ready while down', 5000);
    await sleep(1000);
    await server.restart();
    await waitFor(() => consumerSide.isReady() && producerSide.isReady(), 'ready again', 15_000);

    await publishing;
    await waitFor(() => handled.size === total, `all ${total} handled`, 45_000);
    await sub.close();

    for (const [key, seqs] of firstSeen) {
      const sorted = [...seqs].sort((a, b) => a - b);
      expect(seqs, `first handling of ${key} in publish order`).toEqual(sorted);
    }
    const stream = await producerSide.manager.streams.info('loss_Order');
    expect(stream.state.messages, 'retried batches stored once (Nats-Msg-Id)').toBe(total);
    console.log(
      `[nats connection loss] ${total} messages, ${deliveries - total} redelivered duplicates, ${publishFailures} failed publish attempts retried`,
    );
    await Promise.all([consumerSide.close(), producerSide.close()]);
  }, 90_000);
});
