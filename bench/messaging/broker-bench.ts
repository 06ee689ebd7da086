import type { Broker } from '@ferry/core';
import { PostgresBroker } from '@ferry/postgres';
import type { BenchDatabases } from '../lib/bench-databases.js';
import { quick } from '../lib/report.js';
import type { BenchPart } from './bench-part.js';
import { measureEndToEnd, measureProducersAlone } from './broker-e2e.js';
import { type BrokerServer, openNatsServer, openRabbitMqServer } from './broker-servers.js';
import { CONSUMER_GROUP } from './consumer-process.js';
import { natsRawPublish, RAW_WINDOW, rabbitMqRawPublish } from './raw-publish.js';
import { DRAIN_BATCH_SIZE, measureDrain } from './relay-drain.js';
import { measureRelayLatency } from './relay-latency.js';

/*
 * Issue 3's part: NATS JetStream and RabbitMQ, each against its official client alone (raw
 * publish), the polling relay draining a backlog to each (and to the PostgreSQL broker for
 * comparison), producer-to-consumer throughput through each, and commit-to-ack latency of the
 * tailing and the polling relay, both on NATS so that they compare.
 */

const drainCount = quick ? 10_000 : 50_000;
const rawMs = quick ? 1000 : 5000;
const e2eMs = quick ? 2000 : 10_000;
const latencyMs = quick ? 1500 : 10_000;
/**
 * Concurrent producers in the throughput and maximum-rate phases. A business transaction waits
 * for its commit's WAL flush (about 4 ms here), so one producer commits ~250/s; 16 keep the
 * PostgreSQL group commit busy, so that the relay and the broker, not the producers, set the pace.
 */
const producers = 16;
/**
 * NATS publishes in flight per `publish` call (the adapter's default is 1,024). On this 2-core
 * machine 256 was never slower than 1,024 and, when the machine was loaded, much faster: raw
 * publish 11-12.8k/s against 2-7.5k/s.
 */
export const NATS_PUBLISH_WINDOW = 256;

/**
 * Runs one phase; a phase that fails is reported (its metrics are left out and the process
 * will exit non-zero) and the others still run, so one broken adapter does not hide the rest.
 */
async function guard(phase: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    process.exitCode = 1;
    console.log(
      `FAILED ${phase}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  }
}

/** Runs issue 3's measurements; brokers that cannot be reached are skipped with a line saying so. */
export async function runBrokerBench(databases: BenchDatabases): Promise<BenchPart> {
  const metrics: Record<string, number> = {};
  const started = performance.now();
  const line = (text: string) =>
    console.log(`  [${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${text}`);
  // Phases take turns on these, each emptying what it uses first (CREATE DATABASE costs ~0.3 s here).
  const producerUrl = await databases.fresh('producer');
  const consumerUrl = await databases.fresh('consumer');
  const tailingUrl = await databases.fresh('tailing');
  const tailingE2eUrl = await databases.fresh('tailing_e2e');
  const pgBroker = await PostgresBroker.connect({ connectionString: await databases.fresh('pg_broker') });
  const nats = await openNatsServer({ publishWindow: NATS_PUBLISH_WINDOW });
  const rabbit = await openRabbitMqServer();

  const drain = async (label: string, broker: Broker, prepare?: (channel: string) => Promise<void>) => {
    const r = await measureDrain({ url: producerUrl, label, broker, count: drainCount, prepare });
    line(
      `${label} drain: ${drainCount} messages in ${r.seconds.toFixed(2)} s, ${r.batches} batches of ≤ ${DRAIN_BATCH_SIZE}, ` +
        `${Math.round(r.publishShare * 100)}% of the time in broker.publish${r.failures ? `, ${r.failures} failed batches` : ''}`,
    );
    return r.msgsPerS;
  };

  try {
    if (nats) {
      await guard('nats raw publish and drain', async () => {
        metrics.nats_raw_publish_msgs_per_s = await natsRawPublish(nats, rawMs, RAW_WINDOW);
        line(`nats raw publish: ${Math.round(metrics.nats_raw_publish_msgs_per_s)}/s`);
        metrics.nats_relay_drain_msgs_per_s = await drain('nats', await nats.connect());
        metrics.nats_drain_to_raw_ratio =
          metrics.nats_relay_drain_msgs_per_s / metrics.nats_raw_publish_msgs_per_s;
      });
    }
    if (rabbit) {
      await guard('rabbitmq raw publish and drain', async () => {
        metrics.rabbitmq_raw_publish_msgs_per_s = await rabbitMqRawPublish(rabbit, rawMs, RAW_WINDOW);
        line(`rabbitmq raw publish: ${Math.round(metrics.rabbitmq_raw_publish_msgs_per_s)}/s`);
        const broker = await rabbit.connect();
        metrics.rabbitmq_relay_drain_msgs_per_s = await drain('rabbitmq', broker, (channel) =>
          rabbit.declareGroup(broker, channel, 'bench-drain'),
        );
        metrics.rabbitmq_drain_to_raw_ratio =
          metrics.rabbitmq_relay_drain_msgs_per_s / metrics.rabbitmq_raw_publish_msgs_per_s;
      });
    }
    await guard('pg drain', async () => {
      metrics.pg_relay_drain_msgs_per_s = await drain('pg', pgBroker);
    });

    await guard('producers alone', async () => {
      metrics.e2e_producers_alone_tx_per_s = await measureProducersAlone({
        url: producerUrl,
        broker: pgBroker,
        producers,
        ms: rawMs,
      });
      line(`${producers} producers alone: ${Math.round(metrics.e2e_producers_alone_tx_per_s)} business tx/s`);
    });
    for (const server of [nats, rabbit]) {
      if (!server) continue;
      await guard(`${server.kind} e2e`, async () => {
        const relayBroker = await server.connect();
        const e2e = await measureEndToEnd({
          serviceUrl: producerUrl,
          consumerUrl,
          label: server.kind,
          relayBroker,
          consumerBroker: { kind: server.kind, url: server.url, namespace: server.namespace },
          // RabbitMQ keeps a group's messages from when its queues exist; recorded for clean-up too.
          prepare: (channel) =>
            (server as BrokerServer<Broker>).declareGroup(relayBroker, channel, CONSUMER_GROUP),
          ms: e2eMs,
          producers,
          relay: { name: `e2e-${server.kind}`, batchSize: DRAIN_BATCH_SIZE },
        });
        metrics[`${server.kind}_e2e_msgs_per_s`] = e2e.msgsPerS;
        Object.assign(metrics, e2e.cpu.metrics);
        line(
          `${server.kind} e2e: ${Math.round(e2e.msgsPerS)} msgs/s; producers committed ${Math.round(e2e.producedPerS)} tx/s meanwhile; ` +
            `event loop busy ${Math.round(e2e.eventLoopBusy * 100)}%${e2e.cpu.summary}`,
        );
      });
    }
    if (nats) {
      const broker = await nats.connect();
      for (const kind of ['tailing', 'polling'] as const) {
        await guard(`${kind} latency`, async () => {
          const result = await measureRelayLatency({
            url: kind === 'tailing' ? tailingUrl : producerUrl,
            relay: kind === 'tailing' ? { kind, name: 'bench-tailing' } : { name: 'bench-polling' },
            label: kind,
            broker,
            ms: latencyMs,
            producers,
          });
          metrics[`${kind}_max_msgs_per_s`] = result.maxRate;
          metrics[`${kind}_latency_rate_msgs_per_s`] = result.rate;
          for (const p of [50, 90, 99]) metrics[`${kind}_p${p}_ms`] = result.latency.percentileMs(p);
          metrics[`${kind}_max_ms`] = result.latency.percentileMs(100);
          metrics[`${kind}_after_commit_p50_ms`] = result.afterCommit.percentileMs(50);
          metrics[`${kind}_after_commit_p99_ms`] = result.afterCommit.percentileMs(99);
          line(
            `${kind} on NATS: max ${Math.round(result.maxRate)}/s (producers ${Math.round(result.producedPerS)} tx/s, ` +
              `last ack ${Math.round(result.ackTailMs)} ms after them, ${Math.round(result.cpuUsPerMsg)} µs CPU/msg in this process), ` +
              `${result.latency.count} messages at ${result.rate}/s, ` +
              `p50 ${result.latency.percentileMs(50)} ms, p99 ${result.latency.percentileMs(99)} ms; ` +
              `producer transaction alone p50 ${result.producerTx.percentileMs(50)} ms, p99 ${result.producerTx.percentileMs(99)} ms`,
          );
        });
      }
    } else {
      console.log('SKIPPED tailing_* and polling_* metrics: they are measured on NATS, which is unreachable');
    }
    if (nats) {
      // The NATS end to end with the transaction log tailing relay, issue 3's other relay. Last:
      // its slot, idle once the phase ends, holds WAL back until the databases are dropped.
      await guard('nats e2e with the tailing relay', async () => {
        const e2e = await measureEndToEnd({
          serviceUrl: tailingE2eUrl,
          consumerUrl,
          label: 'natsTailing',
          cpuPrefix: 'nats_e2e_tailing',
          relayBroker: await nats.connect(),
          consumerBroker: { kind: 'nats', url: nats.url, namespace: nats.namespace },
          ms: e2eMs,
          producers,
          relay: { kind: 'tailing', name: 'bench-e2e-tailing' },
        });
        metrics.nats_e2e_tailing_msgs_per_s = e2e.msgsPerS;
        Object.assign(metrics, e2e.cpu.metrics);
        line(
          `nats e2e, tailing relay: ${Math.round(e2e.msgsPerS)} msgs/s; producers committed ${Math.round(e2e.producedPerS)} tx/s meanwhile${e2e.cpu.summary}`,
        );
      });
    }
  } finally {
    await pgBroker.close();
    await nats?.cleanup();
    await rabbit?.cleanup();
  }
  return { metrics, notes };
}

const notes: Record<string, string> = {
  nats_raw_publish_msgs_per_s: `@nats-io/jetstream js.publish + stream ack, ${RAW_WINDOW} in flight, same messages`,
  nats_relay_drain_msgs_per_s: `target ≥ 4,500 and ≥ 0.25 × raw (${quick ? '10,000' : '50,000'}-message backlog, polling relay)`,
  rabbitmq_raw_publish_msgs_per_s: `amqplib confirm channel, ${RAW_WINDOW} unconfirmed, same messages and queues`,
  rabbitmq_relay_drain_msgs_per_s: 'polling relay, same backlog, one group of quorum queues',
  pg_relay_drain_msgs_per_s: 'polling relay, same backlog, PostgreSQL broker (for comparison)',
  e2e_producers_alone_tx_per_s: `${producers} producers, no relay or consumer running: the ceiling of *_e2e`,
  nats_e2e_msgs_per_s: `target ≥ 2,000 (producer commit → consumer commit, ${producers} producers)`,
  rabbitmq_e2e_msgs_per_s: `producer commit → consumer commit, ${producers} producers`,
  nats_e2e_tailing_msgs_per_s: 'nats_e2e with the transaction log tailing relay instead of the polling one',
  tailing_max_msgs_per_s: `commits/s acked with the tailing relay (${producers} producers, NATS; producer-bound, see above)`,
  tailing_p50_ms: 'target ≤ 5 (business tx scheduled start → NATS ack, open loop at half the max)',
  tailing_p99_ms: 'target ≤ 25',
  polling_max_msgs_per_s: 'the same with the polling relay (NATS)',
  tailing_after_commit_p50_ms: "same messages, from the producer's commit returning (relay + broker only)",
  polling_p50_ms: 'polling relay, same broker and method, for comparison',
};
