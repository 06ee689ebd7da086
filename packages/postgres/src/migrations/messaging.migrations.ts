import type { Migration } from './migrate.js';

/**
 * Tables each service database gets for messaging: the outbox, the inbox of the idempotent
 * consumer and the dead-letter store. Applied by {@link migrateMessaging}.
 */
export const messagingMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'outbox-inbox-dead-letters',
    sql: `
      CREATE SCHEMA IF NOT EXISTS ferry;
      CREATE TABLE ferry.outbox (
        position      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id    uuid        NOT NULL,
        channel       text        NOT NULL,
        partition_key text        NOT NULL,
        headers       jsonb       NOT NULL,
        body          text        NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        published_at  timestamptz
      );
      -- The polling relay reads unpublished rows in order; the purge finds old published ones.
      CREATE INDEX outbox_unpublished ON ferry.outbox (position) WHERE published_at IS NULL;
      CREATE INDEX outbox_published ON ferry.outbox (published_at) WHERE published_at IS NOT NULL;

      CREATE TABLE ferry.inbox (
        consumer_group text        NOT NULL,
        message_id     uuid        NOT NULL,
        handled_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer_group, message_id)
      );
      CREATE INDEX inbox_handled_at ON ferry.inbox (handled_at);

      CREATE TABLE ferry.dead_letters (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        consumer_group   text        NOT NULL,
        message_id       text        NOT NULL,
        channel          text        NOT NULL,
        partition_key    text        NOT NULL,
        headers          jsonb       NOT NULL,
        body             text        NOT NULL,
        reason           text        NOT NULL,
        error            text,
        attempts         int         NOT NULL,
        dead_lettered_at timestamptz NOT NULL DEFAULT now(),
        replayed_at      timestamptz,
        UNIQUE (consumer_group, message_id)
      );
    `,
  },
  {
    version: 2,
    name: 'relay-wake-up-state',
    sql: `
      -- NOTIFY takes a database-wide lock at commit, which serialises committing transactions.
      -- Producers therefore notify only while a relay is waiting for work (waiting_until in the
      -- future); a busy relay needs no wake-up.
      CREATE TABLE ferry.relay_state (
        id            int PRIMARY KEY CHECK (id = 1),
        waiting_until timestamptz
      );
      INSERT INTO ferry.relay_state (id, waiting_until) VALUES (1, NULL);
    `,
  },
  {
    version: 3,
    name: 'outbox-headers-as-text',
    sql: `
      -- Every business transaction writes an outbox row, and jsonb input (parse, sort the keys,
      -- build the binary form) cost the server CPU in each for headers that relays only read back
      -- whole and parse in Node. Decision 0005, third addendum.
      ALTER TABLE ferry.outbox ALTER COLUMN headers TYPE text USING headers::text;
    `,
  },
  {
    version: 4,
    name: 'outbox-without-primary-key',
    sql: `
      -- Every business transaction inserted into two indexes on position: the primary key and
      -- outbox_unpublished. Nothing needs the primary key: the relays find rows through the partial
      -- indexes and delete them by ctid, the identity keeps positions unique, and the tailing
      -- relay's publication carries inserts only, so needs no replica identity. Decision 0005,
      -- fourth addendum.
      ALTER TABLE ferry.outbox DROP CONSTRAINT IF EXISTS outbox_pkey;
    `,
  },
];
