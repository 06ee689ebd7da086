import { type Broker, type ConsumerOptions, MessageConsumer, Messaging } from '@ferry/core';
import pg from 'pg';
import { PostgresDeadLetterStore } from '../dead-letters/postgres-dead-letters.js';
import { PostgresInbox, type PostgresInboxOptions } from '../inbox/postgres-inbox.js';
import { messagingMigrations } from '../migrations/messaging.migrations.js';
import { migrate } from '../migrations/migrate.js';
import { PostgresOutbox } from '../outbox/postgres-outbox.js';
import { createRelay, type RelaySettings } from '../relay/relay-config.js';
import type { MessageRelay } from '../relay/relay-events.js';
import { isTransientPgError } from '../transient-errors.js';
import type { TxHandle } from '../tx.js';

/** Options of {@link createPostgresMessaging}. */
export interface PostgresMessagingOptions {
  /** The service's own database. */
  readonly connectionString: string;
  readonly broker: Broker;
  /** Connections in the service's pool (default 10). */
  readonly poolSize?: number;
  /**
   * The relay and its settings: the polling relay (the default; `kind` may be left out) or
   * `{ kind: 'tailing', ... }` for transaction log tailing; `false` runs no relay in this process.
   */
  readonly relay?: RelaySettings | false;
  /** How consumers' inbox transactions batch messages (see {@link PostgresInbox}). */
  readonly inbox?: PostgresInboxOptions;
}

/** Everything a service needs to send and receive messages through its database. */
export interface PostgresMessaging {
  readonly pool: pg.Pool;
  /** Typed send API; every call takes the caller's transaction. */
  readonly messaging: Messaging<TxHandle>;
  readonly outbox: PostgresOutbox;
  readonly inbox: PostgresInbox;
  readonly deadLetters: PostgresDeadLetterStore;
  readonly relay: MessageRelay | undefined;
  readonly broker: Broker;
  /** A consumer for `group` whose handlers get the inbox transaction. */
  consumer(
    group: string,
    options?: Partial<Omit<ConsumerOptions<pg.PoolClient>, 'group'>>,
  ): MessageConsumer<pg.PoolClient>;
  /** Migrates the messaging tables and starts the relay. */
  start(): Promise<void>;
  /** Stops consumers made here, then the relay, then closes the pool. */
  stop(): Promise<void>;
}

/**
 * Wires a service's messaging on PostgreSQL: outbox, relay (polling, or transaction log
 * tailing with `relay: { kind: 'tailing' }`), inbox, dead letters and consumers over the given broker.
 *
 * @example
 * const m = await createPostgresMessaging({ connectionString, broker });
 * await m.start();
 * await withTransaction(m.pool, (tx) => m.messaging.sendCommand(tx, PlaceOrder, payload, { replyTo: 'orders' }));
 */
export function createPostgresMessaging(options: PostgresMessagingOptions): PostgresMessaging {
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 10 });
  pool.on('error', () => {});
  const outbox = new PostgresOutbox();
  const inbox = new PostgresInbox(pool, options.inbox);
  const deadLetters = new PostgresDeadLetterStore(pool);
  const relay =
    options.relay === false
      ? undefined
      : createRelay(options.relay ?? {}, {
          pool,
          connectionString: options.connectionString,
          broker: options.broker,
        });
  const consumers: MessageConsumer<pg.PoolClient>[] = [];
  return {
    pool,
    outbox,
    inbox,
    deadLetters,
    relay,
    broker: options.broker,
    messaging: new Messaging<TxHandle>(outbox),
    consumer(group, consumerOptions = {}) {
      const consumer = new MessageConsumer<pg.PoolClient>({
        broker: options.broker,
        inbox,
        deadLetters,
        isTransient: isTransientPgError,
        ...consumerOptions,
        group,
      });
      consumers.push(consumer);
      return consumer;
    },
    async start() {
      await migrate(pool, 'ferry-messaging', messagingMigrations);
      await relay?.start();
    },
    async stop() {
      await Promise.all(consumers.map((c) => c.stop()));
      await relay?.stop();
      await pool.end();
    },
  };
}
