/**
 * @module @ferry/postgres
 *
 * Ferry on PostgreSQL: the transactional outbox and its relays, the inbox of the idempotent
 * consumer, the dead-letter store, a durable broker on tables (the embedded default),
 * versioned migrations and the embedded server.
 */
export * from './database.js';
export * from './embedded/embedded-server.js';
export * from './migrations/migrate.js';
