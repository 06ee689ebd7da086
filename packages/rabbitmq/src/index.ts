/**
 * @module @ferry/rabbitmq
 *
 * Ferry's Broker port on RabbitMQ (amqplib): publisher confirms, durable quorum queues,
 * per-key order within a consumer group through partitions the publisher computes (FNV-1a of
 * the key, routed by a direct exchange to partition queues with single-active-consumer),
 * prefetch, a dead-letter exchange as the delivery-limit backstop, and a connection that
 * survives outages. Design: docs/decisions/0251-rabbitmq-broker-design.md.
 */

export { RabbitMqPublishError } from './confirm.publisher.js';
export { RabbitMqClosedError } from './connection.js';
export { partitionOf } from './partitioning.js';
export { connectRabbitMq, RabbitMqBroker } from './rabbitmq.broker.js';
export type { RabbitMqBrokerOptions, RabbitMqEvent } from './rabbitmq.options.js';
export { PartitionCountMismatchError } from './topology.js';
