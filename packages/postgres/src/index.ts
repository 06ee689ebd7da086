/**
 * @module @ferry/postgres
 *
 * Ferry on PostgreSQL: the transactional outbox and its relays, the inbox of the idempotent
 * consumer, the dead-letter store, a durable broker on tables (the embedded default),
 * versioned migrations and the embedded server.
 */

export * from './broker/postgres-broker.js';
export * from './database.js';
export * from './dead-letters/postgres-dead-letters.js';
export * from './embedded/embedded-server.js';
export * from './inbox/postgres-inbox.js';
export * from './migrations/broker.migrations.js';
export * from './migrations/messaging.migrations.js';
export * from './migrations/migrate.js';
export * from './outbox/postgres-outbox.js';
export * from './relay/lsn.js';
export * from './relay/polling-relay.js';
export * from './relay/relay-config.js';
export * from './relay/relay-events.js';
export * from './relay/replication-slot.js';
export * from './relay/tailing-relay.js';
export * from './relay/tailing-relay-events.js';
export * from './runtime/database-server.js';
export * from './runtime/postgres-messaging.js';
export * from './transient-errors.js';
export * from './tx.js';
