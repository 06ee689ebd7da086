/**
 * @module @ferry/rabbitmq
 *
 * Ferry's Broker port on RabbitMQ (amqplib): publisher confirms, durable quorum queues,
 * per-key order within a consumer group through a consistent-hash exchange over partition
 * queues with single-active-consumer, prefetch, a dead-letter exchange as the delivery-limit
 * backstop, and a connection that survives outages. Design: docs/decisions/0251-rabbitmq-broker-design.md.
 */

export { RabbitMqPublishError } from './confirm.publisher.js';
export { RabbitMqClosedError } from './connection.js';
export { connectRabbitMq, RabbitMqBroker } from './rabbitmq.broker.js';
export type { RabbitMqBrokerOptions, RabbitMqEvent } from './rabbitmq.options.js';
export {
  CONSISTENT_HASH_PLUGIN,
  PartitionCountMismatchError,
  RabbitMqPluginMissingError,
} from './topology.js';
