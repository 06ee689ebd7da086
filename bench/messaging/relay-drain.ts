import type { Broker } from '@ferry/core';
import { createPostgresMessaging, PollingRelay, type RelayEvent } from '@ferry/postgres';
import { resetServiceDatabase } from '../lib/bench-databases.js';
import { waitForCount } from '../lib/wait.js';
import { BenchOrders } from './bench-order.js';
import { observePublish } from './observed-broker.js';

/**
 * Rows the polling relay claims per batch in the drain and end-to-end benches (the relay's
 * default is 500): fewer claim/mark/commit rounds per message; 1,000 drained 10-20% faster than 500 here.
 */
export const DRAIN_BATCH_SIZE = 1000;

/** What one drain measured, and where its time went. */
export interface DrainResult {
  readonly msgsPerS: number;
  readonly seconds: number;
  readonly batches: number;
  /** Share of the drain spent inside `broker.publish` (the rest: claiming, marking, committing, idling). */
  readonly publishShare: number;
  readonly failures: number;
}

/**
 * Times the polling relay draining a backlog: `count` messages are written to a fresh
 * service's outbox with no relay running, then a relay starts and the clock runs until it has
 * reported every row published (marked and committed, so after the broker's acknowledgement).
 */
export async function measureDrain(options: {
  /** A service database, emptied first. */
  readonly url: string;
  readonly label: string;
  readonly broker: Broker;
  readonly count: number;
  readonly batchSize?: number;
  /** Runs before the relay starts, e.g. to declare a group so that the broker keeps the messages. */
  readonly prepare?: (channel: string) => Promise<void>;
}): Promise<DrainResult> {
  const { url, label, broker, count } = options;
  const service = createPostgresMessaging({ connectionString: url, broker, poolSize: 4, relay: false });
  await service.start();
  await resetServiceDatabase(service.pool);
  const orders = new BenchOrders(`BenchDrain${label}`);
  await orders.fill(service, count);
  await service.pool.query('ANALYZE ferry.outbox');
  await options.prepare?.(orders.channel);

  let publishMs = 0;
  const timed = observePublish(broker, (_, startedAt, ackedAt) => {
    publishMs += ackedAt - startedAt;
  });
  let published = 0;
  let batches = 0;
  let failures = 0;
  let finishedAt = 0;
  const relay = new PollingRelay({
    pool: service.pool,
    connectionString: url,
    broker: timed,
    name: `drain-${label}`,
    batchSize: options.batchSize ?? DRAIN_BATCH_SIZE,
    onEvent: (event: RelayEvent) => {
      if (event.kind === 'publish-failed') {
        failures++;
        console.log(
          `  ${label} drain: publish failed (${String(event.error)}), retry in ${event.retryInMs} ms`,
        );
      }
      if (event.kind !== 'published') return;
      batches++;
      published += event.count;
      if (published >= count) finishedAt = performance.now();
    },
  });
  const started = performance.now();
  try {
    await relay.start();
    await waitForCount(() => published, count, `${label} drain`);
    await relay.stop();
    const { rows } = await service.pool.query<{ left: string }>(
      'SELECT count(*) AS left FROM ferry.outbox WHERE published_at IS NULL',
    );
    if (Number(rows[0]?.left) !== 0) throw new Error(`${label} drain left ${rows[0]?.left} rows unpublished`);
  } finally {
    await relay.stop();
    await service.stop();
  }
  const ms = finishedAt - started;
  return {
    msgsPerS: count / (ms / 1000),
    seconds: ms / 1000,
    batches,
    publishShare: publishMs / ms,
    failures,
  };
}
