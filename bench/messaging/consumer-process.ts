import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Broker } from '@ferry/core';
import { NatsBroker } from '@ferry/nats';
import { createPostgresMessaging, PostgresBroker } from '@ferry/postgres';
import { RabbitMqBroker } from '@ferry/rabbitmq';
import { resetServiceDatabase } from '../lib/bench-databases.js';
import { LatencyHistogram } from '../lib/histogram.js';
import { BenchOrders, startSeenConsumer } from './bench-order.js';

/*
 * The consuming service of the end-to-end benches, in a process of its own, as it is in a real
 * deployment: the producing process (producers and relay) and the consuming one each have an
 * event loop, where one process doing both measured one event loop rather than the path.
 *
 * Times cross the process boundary as wall-clock milliseconds, `performance.timeOrigin +
 * performance.now()`, which both processes derive from the same system clock.
 */

/** Where the consumer's broker is: enough for the child to connect its own. */
export type BrokerSpec =
  | { readonly kind: 'postgres'; readonly connectionString: string }
  | { readonly kind: 'nats'; readonly url: string; readonly namespace: string }
  | { readonly kind: 'rabbitmq'; readonly url: string; readonly namespace: string };

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const wallClockMs = (): number => performance.timeOrigin + performance.now();

/** The consumer group the benches' consuming service reads with. */
export const CONSUMER_GROUP = 'bench-consumer';

type ToChild = { readonly type: 'record' } | { readonly type: 'report' } | { readonly type: 'stop' };
type FromChild =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly consumed: number; readonly lastAt: number }
  | {
      readonly type: 'latency';
      readonly p50: number;
      readonly p90: number;
      readonly p99: number;
      readonly max: number;
      readonly count: number;
    }
  | { readonly type: 'stopped' }
  | { readonly type: 'failed'; readonly error: string };

/** Percentiles, in milliseconds, of handled-at minus the `scheduledAt` each message carries. */
export interface RemoteLatency {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly count: number;
}

/** The consuming service running in a child process, as the parent sees it. */
export interface RemoteConsumer {
  /** The consuming process's id, for CPU accounting. */
  readonly pid: number | undefined;
  /** Messages handled (inbox transaction committed) so far, as last reported. */
  consumed(): number;
  /** Wall-clock time of the last handled message. */
  lastConsumedAt(): number;
  /** Starts recording latencies afresh (scheduledAt must be wall-clock ms). */
  record(): Promise<void>;
  /** The latencies recorded since `record`. */
  latency(): Promise<RemoteLatency>;
  stop(): Promise<void>;
}

/**
 * Starts the consuming service in a child process: a MessageConsumer with the PostgreSQL inbox
 * on `consumerUrl` (emptied first), reading `channel`'s OrderPlaced events from its own connection
 * to `broker`, each recorded in its table `seen`. Resolves once it is subscribed.
 */
export async function startRemoteConsumer(options: {
  readonly consumerUrl: string;
  readonly broker: BrokerSpec;
  readonly channel: string;
}): Promise<RemoteConsumer> {
  const child = fork(fileURLToPath(import.meta.url), ['--consume'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, FERRY_BENCH_CONSUMER: JSON.stringify(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let consumed = 0;
  let lastAt = 0;
  const waiters = new Map<FromChild['type'], (message: FromChild) => void>();
  let failure: Error | undefined;
  child.on('message', (message: FromChild) => {
    if (message.type === 'progress') {
      consumed = message.consumed;
      lastAt = message.lastAt;
    } else if (message.type === 'failed') failure = new Error(`consumer process: ${message.error}`);
    const waiter = waiters.get(message.type);
    waiters.delete(message.type);
    waiter?.(message);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = <T extends FromChild['type']>(type: T, send?: ToChild) =>
    new Promise<Extract<FromChild, { type: T }>>((resolve, reject) => {
      if (failure) return reject(failure);
      waiters.set(type, resolve as (message: FromChild) => void);
      void exited.then(() => reject(failure ?? new Error(`consumer process exited before '${type}'`)));
      if (send) child.send(send);
    });
  await next('ready');
  return {
    pid: child.pid,
    consumed: () => {
      if (failure) throw failure;
      return consumed;
    },
    lastConsumedAt: () => lastAt,
    record: async () => {
      child.send({ type: 'record' } satisfies ToChild);
    },
    latency: async () => {
      const { p50, p90, p99, max, count } = await next('latency', { type: 'report' });
      return { p50, p90, p99, max, count };
    },
    stop: () => stopChild(child, exited, next),
  };
}

/** Asks the child to stop and waits for it to exit; kills it if it has not within 10 s. */
async function stopChild(
  child: ChildProcess,
  exited: Promise<void>,
  next: (type: 'stopped', send: ToChild) => Promise<unknown>,
): Promise<void> {
  if (child.exitCode !== null) return;
  await next('stopped', { type: 'stop' }).catch(() => {});
  const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(kill);
}

async function connectBroker(spec: BrokerSpec): Promise<Broker> {
  switch (spec.kind) {
    case 'postgres':
      return PostgresBroker.connect({ connectionString: spec.connectionString });
    case 'nats':
      return NatsBroker.connect({
        servers: spec.url,
        namespace: spec.namespace,
        name: 'ferry-bench-consumer',
      });
    case 'rabbitmq':
      return RabbitMqBroker.connect({
        url: spec.url,
        namespace: spec.namespace,
        connectionName: 'ferry-bench-consumer',
      });
  }
}

/** The child's side: consume, report progress every 10 ms, answer the parent's requests. */
async function consume(): Promise<void> {
  const send = (message: FromChild) => process.send?.(message);
  const options = JSON.parse(process.env.FERRY_BENCH_CONSUMER!) as Parameters<typeof startRemoteConsumer>[0];
  const broker = await connectBroker(options.broker);
  const side = createPostgresMessaging({
    connectionString: options.consumerUrl,
    broker,
    poolSize: 20,
    relay: false,
  });
  await side.start();
  await resetServiceDatabase(side.pool);
  let consumed = 0;
  let lastAt = 0;
  let latency: LatencyHistogram | undefined;
  const consumer = await startSeenConsumer(side, new BenchOrders(options.channel).type, (message) => {
    consumed++;
    lastAt = wallClockMs();
    latency?.recordMs(lastAt - message.payload.scheduledAt);
  });
  let reported = 0;
  const progress = setInterval(() => {
    if (consumed === reported) return;
    reported = consumed;
    send({ type: 'progress', consumed, lastAt });
  }, 10);
  process.on('message', async (message: ToChild) => {
    if (message.type === 'record') latency = new LatencyHistogram();
    else if (message.type === 'report') {
      const h = latency ?? new LatencyHistogram();
      send({
        type: 'latency',
        p50: h.percentileMs(50),
        p90: h.percentileMs(90),
        p99: h.percentileMs(99),
        max: h.percentileMs(100),
        count: h.count,
      });
    } else {
      clearInterval(progress);
      await consumer.stop();
      await side.stop();
      await broker.close();
      send({ type: 'stopped' });
      process.exit(0);
    }
  });
  send({ type: 'ready' });
}

if (process.argv.includes('--consume')) {
  consume().catch((error: unknown) => {
    process.send?.({
      type: 'failed',
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    process.exit(1);
  });
}
