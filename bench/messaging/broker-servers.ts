import type { Broker } from '@ferry/core';
import { NatsBroker, type NatsBrokerOptions } from '@ferry/nats';
import { RabbitMqBroker, type RabbitMqBrokerOptions } from '@ferry/rabbitmq';
import amqp from 'amqplib';
import { dropNamespace } from '../../packages/nats/src/nats.fixtures.js';
import { runId } from '../lib/bench-databases.js';

/**
 * The shared NATS and RabbitMQ servers the bench runs against, each under a namespace of its
 * own run, and the clean-up that deletes from the server everything that namespace holds.
 */

/** Channels and groups a bench run used on a broker, so that they can be deleted afterwards. */
export interface BrokerServer<B extends Broker> {
  readonly kind: 'nats' | 'rabbitmq';
  readonly url: string;
  readonly namespace: string;
  /** Connects a broker in this run's namespace. */
  connect(): Promise<B>;
  /** Records a consumer group the run declares on `channel` (RabbitMQ deletes its queues at the end). */
  declareGroup(broker: B, channel: string, group: string): Promise<void>;
  /** Closes every broker `connect` opened and deletes the namespace's streams, exchanges and queues. */
  cleanup(): Promise<void>;
}

export const natsUrl = process.env.FERRY_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
export const rabbitMqUrl = process.env.FERRY_BENCH_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const namespace = `ferry-bench-${runId}`;

/** The NATS server, or undefined (with the reason printed) when it cannot be reached. */
export async function openNatsServer(
  options: Partial<NatsBrokerOptions> = {},
): Promise<BrokerServer<NatsBroker> | undefined> {
  const brokers: NatsBroker[] = [];
  const server: BrokerServer<NatsBroker> = {
    kind: 'nats',
    url: natsUrl,
    namespace,
    async connect() {
      const broker = await NatsBroker.connect({
        servers: natsUrl,
        namespace,
        name: 'ferry-bench',
        ...options,
      });
      brokers.push(broker);
      return broker;
    },
    async declareGroup() {
      // Streams keep every message; a group's consumers are created when it subscribes.
    },
    async cleanup() {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
      await dropNamespace(natsUrl, namespace);
    },
  };
  return probe(server);
}

/** The RabbitMQ server, or undefined (with the reason printed) when it cannot be reached. */
export async function openRabbitMqServer(
  options: Partial<RabbitMqBrokerOptions> = {},
): Promise<BrokerServer<RabbitMqBroker> | undefined> {
  const brokers: RabbitMqBroker[] = [];
  const groups = new Map<string, { channel: string; group: string }>();
  const server: BrokerServer<RabbitMqBroker> = {
    kind: 'rabbitmq',
    url: rabbitMqUrl,
    namespace,
    async connect() {
      const broker = await RabbitMqBroker.connect({
        url: rabbitMqUrl,
        namespace,
        connectionName: 'ferry-bench',
        ...options,
      });
      brokers.push(broker);
      const subscribe = broker.subscribe.bind(broker);
      broker.subscribe = (spec, handler) => {
        groups.set(`${spec.channel}\u0000${spec.group}`, { channel: spec.channel, group: spec.group });
        return subscribe(spec, handler);
      };
      return broker;
    },
    async declareGroup(broker, channel, group) {
      groups.set(`${channel}\u0000${group}`, { channel, group });
      await broker.declareGroup(channel, group);
    },
    async cleanup() {
      const [admin, ...others] = brokers.splice(0);
      await Promise.all(others.map((b) => b.close()));
      if (admin) {
        const channels = new Set<string>();
        for (const { channel, group } of groups.values()) {
          await attempt(`delete RabbitMQ group ${group} on ${channel}`, () =>
            admin.deleteGroup(channel, group),
          );
          channels.add(channel);
        }
        for (const channel of channels) {
          await attempt(`delete RabbitMQ channel ${channel}`, () => admin.deleteChannel(channel));
        }
        await admin.close();
      }
      // The dead-letter exchange and queue that declaring a group creates (docs/decisions/0251).
      await attempt('delete the RabbitMQ dead-letter exchange and queue', async () => {
        const model = await amqp.connect(rabbitMqUrl);
        try {
          const ch = await model.createChannel();
          await ch.deleteExchange(`${namespace}:dead-letter`);
          await ch.deleteQueue(`${namespace}:dead-letter`);
          await ch.close();
        } finally {
          await model.close();
        }
      });
    },
  };
  return probe(server);
}

/** Connects once to see that the server answers; prints why not and returns undefined if it does not. */
async function probe<B extends Broker>(server: BrokerServer<B>): Promise<BrokerServer<B> | undefined> {
  try {
    await server.connect();
    return server;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const prefix = server.kind === 'nats' ? 'nats_*' : 'rabbitmq_*';
    console.log(
      `SKIPPED ${prefix} metrics: ${server.kind} at ${redact(server.url)} is unreachable (${reason})`,
    );
    // Nothing was created: the first connection failed.
    return undefined;
  }
}

/** Runs one clean-up step; a failure is printed and the next step still runs. */
async function attempt(what: string, step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (error) {
    console.log(`WARNING: could not ${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}
