import type { Broker } from '@ferry/core';
import { createPostgresMessaging, type RelaySettings } from '@ferry/postgres';
import { resetServiceDatabase } from '../lib/bench-databases.js';
import { type CpuPerMessage, cpuPerMessage, cpuSnapshot } from '../lib/cpu-accounting.js';
import { closedLoopRate } from '../lib/report.js';
import { waitForCount } from '../lib/wait.js';
import { BenchOrders, KEYS } from './bench-order.js';
import { type BrokerSpec, startRemoteConsumer, wallClockMs } from './consumer-process.js';

/** What an end-to-end run measured. */
export interface EndToEndResult {
  /** Messages produced and consumed in the timed run. */
  readonly messages: number;
  /** Messages from the first producer commit to the last consumer commit, per second. */
  readonly msgsPerS: number;
  /** Business transactions the producers committed per second meanwhile (their own ceiling shows here). */
  readonly producedPerS: number;
  /** Share of the run the producing process's event loop was busy (producers and relay share it). */
  readonly eventLoopBusy: number;
  /** CPU per message during the run, by process role (cpu-accounting.ts); empty off Linux. */
  readonly cpu: CpuPerMessage;
}

/**
 * Producer commit to consumer commit through the whole path: producers commit business
 * transactions with an OrderPlaced event each as fast as they can for `ms`, the polling relay publishes
 * them to `broker`, and a MessageConsumer with the PostgreSQL inbox handles each one in a
 * transaction of its own database, in a process of its own with its own broker connection, as
 * another service would (see consumer-process.ts). One message per key first warms up streams,
 * queues and partition ownership, untimed.
 */
export async function measureEndToEnd(options: {
  /** The producing service's database and the consuming service's, both emptied first. */
  readonly serviceUrl: string;
  readonly consumerUrl: string;
  readonly label: string;
  /** Prefix of the CPU metrics (`<prefix>_cpu_us_per_msg`, …); `<label>_e2e` unless given. */
  readonly cpuPrefix?: string;
  readonly relayBroker: Broker;
  /** Where the consuming process connects its own broker. */
  readonly consumerBroker: BrokerSpec;
  /** Declares the consumer group on the channel before anything is published, if the broker needs it. */
  readonly prepare?: (channel: string) => Promise<void>;
  /** How long the producers commit; the clock then runs on until the consumer has handled every message. */
  readonly ms: number;
  readonly producers: number;
  /** The relay: the polling one, or `{ kind: 'tailing' }` (then on a database no other relay tails). */
  readonly relay: RelaySettings;
}): Promise<EndToEndResult> {
  const { serviceUrl, consumerUrl, label, ms, producers } = options;
  const orders = new BenchOrders(`BenchE2e${label}`);
  const service = createPostgresMessaging({
    connectionString: serviceUrl,
    broker: options.relayBroker,
    poolSize: producers + 2,
    relay: false,
  });
  await service.start();
  await resetServiceDatabase(service.pool);
  await orders.createTable(service);
  const relaying = createPostgresMessaging({
    connectionString: serviceUrl,
    broker: options.relayBroker,
    poolSize: 3,
    relay: options.relay,
  });
  await options.prepare?.(orders.channel);
  const consumer = await startRemoteConsumer({
    consumerUrl,
    broker: options.consumerBroker,
    channel: orders.channel,
  });
  await relaying.start();
  try {
    for (let i = 0; i < KEYS; i++) await orders.place(service);
    await waitForCount(consumer.consumed, KEYS, `${label} e2e warm-up`);

    let produced = 0;
    const elu = performance.eventLoopUtilization();
    const cpuBefore = cpuSnapshot(consumer.pid);
    const started = wallClockMs();
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: producers }, async () => {
        while (performance.now() < end) {
          await orders.place(service, wallClockMs());
          produced++;
        }
      }),
    );
    const producedMs = wallClockMs() - started;
    await waitForCount(consumer.consumed, KEYS + produced, `${label} e2e`);
    return {
      cpu: cpuPerMessage(options.cpuPrefix ?? `${label}_e2e`, cpuBefore, cpuSnapshot(consumer.pid), produced),
      messages: produced,
      msgsPerS: produced / ((consumer.lastConsumedAt() - started) / 1000),
      producedPerS: produced / (producedMs / 1000),
      eventLoopBusy: performance.eventLoopUtilization(elu).utilization,
    };
  } finally {
    await consumer.stop();
    await relaying.stop();
    await service.stop();
  }
}

/**
 * The ceiling of any end-to-end figure here: business transactions per second that `producers`
 * commit on the service database with no relay and no consumer running (same transaction, same
 * database server, which the consumer's inbox transactions share in the end-to-end runs).
 */
export async function measureProducersAlone(options: {
  readonly url: string;
  readonly broker: Broker;
  readonly producers: number;
  readonly ms: number;
}): Promise<number> {
  const orders = new BenchOrders('BenchProducersAlone');
  const service = createPostgresMessaging({
    connectionString: options.url,
    broker: options.broker,
    poolSize: options.producers + 2,
    relay: false,
  });
  await service.start();
  try {
    await resetServiceDatabase(service.pool);
    await orders.createTable(service);
    const place = async () => {
      await orders.place(service);
    };
    await closedLoopRate(options.producers, 200, place);
    return await closedLoopRate(options.producers, options.ms, place);
  } finally {
    await service.stop();
  }
}
