import { toWire, type WireMessage } from '@ferry/core';
import { messageSubject, type NatsBroker, partitionOf } from '@ferry/nats';
import type { RabbitMqBroker } from '@ferry/rabbitmq';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import amqp from 'amqplib';
import { BenchOrders } from './bench-order.js';
import type { BrokerServer } from './broker-servers.js';

/**
 * The brokers alone, with their official clients: publishes of the same messages Ferry sends
 * (an OrderPlaced body and its headers, the message id), each waiting for the broker's
 * acknowledgement, `window` of them in flight. On NATS they go to a stream the adapter created
 * (file storage, de-duplication by message id); on RabbitMQ to quorum queues like the adapter's.
 */

/** Publishes in flight (see NATS_PUBLISH_WINDOW for why not more). */
export const RAW_WINDOW = 256;
const RAW_CHANNEL = 'BenchRaw';

/** Runs `send` from `window` loops for `ms`; resolves to acknowledged messages per second. */
async function windowed(window: number, ms: number, send: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  let done = 0;
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (performance.now() < end) {
        await send(next++);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

/** The messages Ferry would send on the raw channel. */
async function rawMessages(count: number): Promise<WireMessage[]> {
  return (await new BenchOrders(RAW_CHANNEL).build(count)).map(toWire);
}

/** Twelve hex digits of `i`, to make a message id unique per publish. */
const hex12 = (i: number) => i.toString(16).padStart(12, '0');

/** JetStream `js.publish` with a stream ack for each message, `window` in flight. */
export async function natsRawPublish(server: BrokerServer<NatsBroker>, ms: number, window = RAW_WINDOW) {
  const ferry = await server.connect();
  const messages = await rawMessages(4096);
  // Ferry creates the stream, with its settings (file storage, de-duplication window).
  await ferry.publish(messages.slice(0, 1));
  const { partitions } = ferry.options;
  const nc = await connect({ servers: server.url, name: 'ferry-bench-raw' });
  try {
    const js = jetstream(nc);
    const encoder = new TextEncoder();
    const prepared = messages.map((m) => ({
      id: m.id,
      subject: messageSubject(server.namespace, m.channel, partitionOf(m.partitionKey, partitions)),
      data: encoder.encode(m.body),
      headers: Object.entries(m.headers),
    }));
    return await windowed(window, ms, (i) => {
      const m = prepared[i % prepared.length]!;
      const h = natsHeaders();
      for (const [name, value] of m.headers) h.set(name, value);
      // A fresh id per publish: a repeated id would be a de-duplicated no-op.
      return js.publish(m.subject, m.data, { headers: h, msgID: `${m.id.slice(0, 24)}${hex12(i)}` });
    });
  } finally {
    await nc.close();
  }
}

/** Quorum queues the raw RabbitMQ publishes spread over, as the adapter spreads a group's partitions. */
const RAW_QUEUES = 8;

/**
 * amqplib confirm channel: persistent publishes, `window` unconfirmed at once, to a direct
 * exchange over {@link RAW_QUEUES} durable quorum queues that this function declares (and
 * deletes afterwards) itself, so that it depends on nothing of the adapter's topology.
 */
export async function rabbitMqRawPublish(
  server: BrokerServer<RabbitMqBroker>,
  ms: number,
  window = RAW_WINDOW,
) {
  const messages = (await new BenchOrders(RAW_CHANNEL).build(4096)).map(toWire);
  const exchange = `${server.namespace}:raw`;
  const queues = Array.from({ length: RAW_QUEUES }, (_, i) => `${server.namespace}:raw:${i}`);
  const model = await amqp.connect(server.url);
  try {
    const channel = await model.createConfirmChannel();
    await channel.assertExchange(exchange, 'direct', { durable: true });
    for (const [i, queue] of queues.entries()) {
      await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await channel.bindQueue(queue, exchange, String(i));
    }
    const prepared = messages.map((m, i) => ({
      routingKey: String(i % RAW_QUEUES),
      content: Buffer.from(m.body, 'utf8'),
      options: {
        messageId: m.id,
        persistent: true,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        headers: { ...m.headers, 'ferry-partition-key': m.partitionKey },
      },
    }));
    try {
      // amqplib buffers what the socket cannot take yet; the window bounds that buffer.
      return await windowed(
        window,
        ms,
        (i) =>
          new Promise<void>((resolve, reject) => {
            const m = prepared[i % prepared.length]!;
            channel.publish(exchange, m.routingKey, m.content, m.options, (error) =>
              error ? reject(new Error('RabbitMQ nacked a publish')) : resolve(),
            );
          }),
      );
    } finally {
      for (const queue of queues) await channel.deleteQueue(queue);
      await channel.deleteExchange(exchange);
    }
  } finally {
    await model.close();
  }
}
