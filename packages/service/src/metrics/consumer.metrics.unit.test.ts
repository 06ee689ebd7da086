import {
  defineEvent,
  event,
  inMemoryTransaction,
  MemoryBroker,
  MemoryDeadLetterStore,
  MemoryInbox,
  MemoryOutbox,
  MessageConsumer,
  Messaging,
  NonRetryableError,
} from '@ferry/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { consumerEventMetrics, relayMetrics } from './consumer.metrics.js';
import { Metrics } from './metrics.js';

const TicketAccepted = defineEvent('TicketAccepted', z.object({ ticketId: z.string() }), 'Ticket');

describe('consumer event metrics', () => {
  it('counts handled, duplicate, retrying and dead-lettered messages by group and type, and times handlers', async () => {
    const metrics = new Metrics({}, { processMetrics: false });
    const broker = new MemoryBroker();
    const outbox = new MemoryOutbox(broker);
    let failures = 0;
    const consumer = new MessageConsumer({
      group: 'delivery',
      broker,
      inbox: new MemoryInbox(),
      deadLetters: new MemoryDeadLetterStore(broker),
      retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 1 },
      sleep: async () => {},
      onEvent: consumerEventMetrics(metrics),
    }).on(TicketAccepted, async ({ message }) => {
      if (message.payload.ticketId === 'flaky' && failures++ < 1) throw new Error('deadlock');
      if (message.payload.ticketId === 'poison') throw new NonRetryableError('no courier model');
    });
    await consumer.start();
    const messaging = new Messaging(outbox);
    for (const id of ['t-1', 'flaky', 'poison'])
      await inMemoryTransaction((tx) =>
        messaging.publishEvents(tx, { type: 'Ticket', id }, [event(TicketAccepted, { ticketId: id })]),
      );
    await outbox.flushed();
    const sent = outbox.published[0]!;
    await broker.publish([sent]);
    const deadline = Date.now() + 2_000;
    while (
      consumer.stats.handled + consumer.stats.duplicates + consumer.stats.deadLettered < 4 &&
      Date.now() < deadline
    )
      await new Promise((r) => setTimeout(r, 5));
    await consumer.stop();
    const text = await metrics.scrape();
    const count = (outcome: string) =>
      Number(
        new RegExp(
          `ferry_consumer_messages_total\\{group="delivery",type="TicketAccepted",outcome="${outcome}"\\} (\\d+)`,
        ).exec(text)?.[1] ?? 0,
      );
    expect(count('handled')).toBe(2);
    expect(count('duplicate')).toBe(1);
    expect(count('retrying')).toBe(1);
    expect(count('dead_lettered')).toBe(1);
    expect(text).toMatch(
      /ferry_consumer_handler_duration_seconds_count\{group="delivery",type="TicketAccepted"\} 2/,
    );
  });

  it('offers relay counters and scrape-time gauges for figures other parts own', async () => {
    const metrics = new Metrics({ service: 'order' }, { processMetrics: false });
    const relay = relayMetrics(metrics);
    relay.published('Order', 3);
    relay.failed();
    let lag = 1.5;
    metrics.registerGauge('ferry_relay_lag_seconds', 'Relay lag', () => lag);
    expect(metrics.registerGauge('ferry_relay_lag_seconds', 'Relay lag', () => 99)).toBe(
      metrics.registry.getSingleMetric('ferry_relay_lag_seconds'),
    );
    let text = await metrics.scrape();
    expect(text).toContain('ferry_relay_published_total{channel="Order",service="order"} 3');
    expect(text).toContain('ferry_relay_failures_total{service="order"} 1');
    expect(text).toContain('ferry_relay_lag_seconds{service="order"} 1.5');
    lag = 7;
    text = await metrics.scrape();
    expect(text).toContain('ferry_relay_lag_seconds{service="order"} 7');
  });
});
