import type { Broker } from '@ferry/core';
import { createPostgresMessaging, type RelaySettings } from '@ferry/postgres';
import { resetServiceDatabase } from '../lib/bench-databases.js';
import { LatencyHistogram } from '../lib/histogram.js';
import { openLoop } from '../lib/report.js';
import { waitForCount } from '../lib/wait.js';
import { BenchOrders, KEYS, scheduledAtOf } from './bench-order.js';
import { observePublish } from './observed-broker.js';

/** What one relay's latency run measured. */
export interface RelayLatencyResult {
  /** Producer commits per second the relay kept up with (closed loop, until the last broker ack). */
  readonly maxRate: number;
  /** Commits per second the producers managed in that phase, and how long the last ack trailed their end. */
  readonly producedPerS: number;
  readonly ackTailMs: number;
  /** This process's CPU time per message in that phase (producers and relay share the process). */
  readonly cpuUsPerMsg: number;
  /** The open-loop rate the latency was measured at: half of `maxRate`. */
  readonly rate: number;
  /** Scheduled start of each business transaction to the broker's ack of its message. */
  readonly latency: LatencyHistogram;
  /** Scheduled start to the producer's commit returning: the part of `latency` before the relay. */
  readonly producerTx: LatencyHistogram;
  /** The producer's commit returning to the broker's ack: the relay's and the broker's part. */
  readonly afterCommit: LatencyHistogram;
}

/**
 * Commit to broker acknowledgement with one relay. The relay is handed a broker whose `publish`
 * notes, when the real publish resolves, the time of every message it carried. First the
 * maximum rate: producers commit as fast as they can for `ms` and the clock runs until the
 * broker acknowledged the last message. Then open loop at half that rate: each business
 * transaction is scheduled at a fixed rate, and its latency runs from its scheduled start
 * (carried in the message) to the acknowledgement, into an HDR histogram. The same messages
 * are also timed from their commit returning to the producer, to split the relay's share out.
 */
export async function measureRelayLatency(options: {
  /** A service database, emptied first (the tailing relay needs one that no other relay tails). */
  readonly url: string;
  readonly relay: RelaySettings;
  readonly label: string;
  readonly broker: Broker;
  readonly ms: number;
  readonly producers: number;
}): Promise<RelayLatencyResult> {
  const { url, label, broker, ms, producers } = options;
  const orders = new BenchOrders(`BenchLatency${label}`);

  let acked = 0;
  let lastAckAt = 0;
  let recordFrom = Number.POSITIVE_INFINITY;
  const latency = new LatencyHistogram();
  const producerTx = new LatencyHistogram();
  const afterCommit = new LatencyHistogram();
  // The commit's reply and the ack race in this one process: whichever comes second records.
  const committedAt = new Map<string, number>();
  const ackedAt = new Map<string, number>();
  const timed = observePublish(broker, (messages, _, now) => {
    for (const message of messages) {
      const scheduledAt = scheduledAtOf(message);
      if (scheduledAt < recordFrom) continue;
      latency.recordMs(now - scheduledAt);
      const commit = committedAt.get(message.id);
      if (commit === undefined) ackedAt.set(message.id, now);
      else {
        afterCommit.recordMs(now - commit);
        committedAt.delete(message.id);
      }
    }
    acked += messages.length;
    lastAckAt = now;
  });

  const service = createPostgresMessaging({
    connectionString: url,
    broker: timed,
    poolSize: producers + 2,
    relay: false,
  });
  await service.start();
  await resetServiceDatabase(service.pool);
  await orders.createTable(service);
  const relaying = createPostgresMessaging({
    connectionString: url,
    broker: timed,
    poolSize: 3,
    relay: options.relay,
  });
  await relaying.start();
  try {
    // Warm-up, untimed: the relay is streaming or polling, the stream exists, statements are prepared.
    for (let i = 0; i < KEYS; i++) await orders.place(service, 0);
    await waitForCount(() => acked, KEYS, `${label} warm-up`);

    let produced = 0;
    const cpu = process.cpuUsage();
    const started = performance.now();
    const end = started + ms;
    await Promise.all(
      Array.from({ length: producers }, async () => {
        while (performance.now() < end) {
          await orders.place(service, 0);
          produced++;
        }
      }),
    );
    const producedAt = performance.now();
    await waitForCount(() => acked, KEYS + produced, `${label} max rate`);
    const maxRate = produced / ((lastAckAt - started) / 1000);
    const producedPerS = produced / ((producedAt - started) / 1000);
    const ackTailMs = lastAckAt - producedAt;
    const used = process.cpuUsage(cpu);
    const cpuUsPerMsg = (used.user + used.system) / produced;

    const rate = Math.max(1, Math.floor(maxRate / 2));
    let sent = 0;
    recordFrom = performance.now();
    await openLoop(rate, ms, async (scheduledAt) => {
      sent++;
      const id = await orders.place(service, scheduledAt);
      const now = performance.now();
      producerTx.recordMs(now - scheduledAt);
      const ack = ackedAt.get(id);
      if (ack === undefined) committedAt.set(id, now);
      else {
        afterCommit.recordMs(ack - now);
        ackedAt.delete(id);
      }
    });
    await waitForCount(() => acked, KEYS + produced + sent, `${label} latency`);
    return { maxRate, producedPerS, ackTailMs, cpuUsPerMsg, rate, latency, producerTx, afterCommit };
  } finally {
    await relaying.stop();
    await service.stop();
  }
}
