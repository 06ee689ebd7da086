/**
 * @module @ferry/nats
 *
 * Ferry's Broker on NATS JetStream: a file stream per channel family, durable pull consumers per
 * consumer group and partition, partition leases in a KV bucket so that per-key order holds across
 * the members of a group, confirmed acks, in-place retries with back-off, dead letters in their own
 * stream, de-duplicated publishing (`Nats-Msg-Id`) and reconnection. Passes `testBroker`.
 */
export type { NatsDeadLetter } from './dead-letter.js';
export * from './naming.js';
export { NatsBroker } from './nats.broker.js';
export type { NatsBrokerEvent, NatsBrokerOptions, ResolvedNatsOptions } from './nats.options.js';
export { partitionOf } from './partitioning.js';
