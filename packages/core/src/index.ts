/**
 * @module @ferry/core
 *
 * Ferry's core: messages and their types, the ports every adapter implements (Broker, Outbox,
 * Inbox, DeadLetterStore), the idempotent message consumer, and in-memory adapters for unit
 * tests. It imports no driver, framework or `node:*` module.
 */

export * from './consumer/backoff.js';
export * from './consumer/consumer.js';
export * from './consumer/keyed-dispatcher.js';
export * from './memory/memory-broker.js';
export * from './memory/memory-dead-letters.js';
export * from './memory/memory-inbox.js';
export * from './memory/memory-outbox.js';
export * from './memory/memory-transaction.js';
export * from './messaging/message.js';
export * from './messaging/message-id.js';
export * from './messaging/message-type.js';
export * from './messaging/messaging.js';
export * from './messaging/partitioning.js';
export * from './messaging/replay.js';
export * from './messaging/standard-schema.js';
export * from './options/positive-integer.js';
export * from './ports/broker.port.js';
export * from './ports/dead-letter.port.js';
export * from './ports/inbox.port.js';
export * from './ports/outbox.port.js';
