import amqp from 'amqplib';
import { TopologyNames } from '../names.js';
import { connectRabbitMq, type RabbitMqBroker } from '../rabbitmq.broker.js';
import type { RabbitMqBrokerOptions } from '../rabbitmq.options.js';

/**
 * Brokers on a namespace of their own for one test file, and the teardown that deletes every
 * exchange and queue they declared from the shared RabbitMQ server.
 */
export interface RabbitFixture {
  readonly namespace: string;
  /** Connects a broker in this fixture's namespace; `options` override the test defaults. */
  connect(options?: Partial<RabbitMqBrokerOptions>): Promise<RabbitMqBroker>;
  /** Closes the fixture's brokers and deletes what they declared. */
  teardown(): Promise<void>;
}

/** Defaults that keep tests fast: quick reconnects and redeliveries, quiet events. */
const TEST_OPTIONS: Partial<RabbitMqBrokerOptions> = {
  partitions: 4,
  reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
  onEvent: () => {},
};

/** A fixture on `url` whose names start with a prefix unique to this run. */
export function rabbitFixture(url: string, label: string): RabbitFixture {
  const namespace = `ferry-test-${label}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const channels = new Set<string>();
  const groups = new Map<string, { channel: string; group: string; partitions: number }>();
  const brokers: RabbitMqBroker[] = [];
  return {
    namespace,
    async connect(options = {}) {
      const merged = { url, ...TEST_OPTIONS, ...options, namespace };
      const broker = await connectRabbitMq(merged);
      brokers.push(broker);
      const subscribe = broker.subscribe.bind(broker);
      const publish = broker.publish.bind(broker);
      const declareGroup = broker.declareGroup.bind(broker);
      const record = (channel: string, group?: string) => {
        channels.add(channel);
        if (group) groups.set(`${channel}:${group}`, { channel, group, partitions: merged.partitions ?? 8 });
      };
      broker.subscribe = (spec, handler) => {
        record(spec.channel, spec.group);
        return subscribe(spec, handler);
      };
      broker.publish = (messages) => {
        for (const message of messages) record(message.channel);
        return publish(messages);
      };
      broker.declareGroup = (channel, group) => {
        record(channel, group);
        return declareGroup(channel, group);
      };
      return broker;
    },
    async teardown() {
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
      const names = new TopologyNames(namespace);
      const model = await amqp.connect(url);
      try {
        const channel = await model.createChannel();
        for (const { channel: name, group, partitions } of groups.values()) {
          for (let i = 0; i < partitions; i++)
            await channel.deleteQueue(names.partitionQueue(name, group, i));
          await channel.deleteQueue(names.rosterQueue(name, group));
        }
        for (const name of channels) {
          await channel.deleteExchange(names.channelExchange(name));
          await channel.deleteQueue(names.partitionCountQueue(name));
        }
        await channel.deleteExchange(names.deadLetter());
        await channel.deleteQueue(names.deadLetter());
        await channel.close();
      } finally {
        await model.close();
      }
    },
  };
}
