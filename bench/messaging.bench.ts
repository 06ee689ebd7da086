import { openDatabaseServer } from '@ferry/postgres';
import { BenchDatabases } from './lib/bench-databases.js';
import { hostMetrics, probeHost } from './lib/host-probe.js';
import { report } from './lib/report.js';
import { mergeParts } from './messaging/bench-part.js';
import { runBrokerBench } from './messaging/broker-bench.js';
import { runPostgresCore } from './messaging/postgres-core.js';

/*
 * npm run bench:messaging [-- --quick]
 * Issue 2: outbox overhead against plain inserts, end-to-end throughput and open-loop latency of
 * the PostgreSQL broker with the polling relay. Issue 3: NATS JetStream and RabbitMQ against
 * their clients alone, relay drains, end-to-end throughput, and commit-to-ack latency of the
 * tailing and polling relays. All on the embedded server (or FERRY_BENCH_DATABASE_URL), in fresh
 * databases of this run; NATS and RabbitMQ at FERRY_BENCH_NATS_URL and FERRY_BENCH_RABBITMQ_URL.
 */
const started = performance.now();
const probeAtStart = probeHost();
const server = await openDatabaseServer({
  adminUrl: process.env.FERRY_BENCH_DATABASE_URL,
  dataDir: '.ferry/bench-postgres',
});
const databases = new BenchDatabases(server);
try {
  const core = await runPostgresCore(databases);
  console.log(`PostgreSQL broker part done at ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log('NATS JetStream and RabbitMQ');
  const brokers = await runBrokerBench(databases);
  const { metrics, notes } = mergeParts([core, brokers]);
  Object.assign(metrics, hostMetrics(probeHost(probeAtStart)));
  notes.host_probe_spread =
    'slowest ÷ fastest of a fixed loop timed at start and end (host_probe_*_ms): near 1 on a quiet host';
  metrics.duration_s = (performance.now() - started) / 1000;
  await report('messaging', metrics, notes);
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await databases.dropAll();
  await server.stop();
}
// Pools and broker connections closed above; exit without waiting for stray timers.
process.exit();
