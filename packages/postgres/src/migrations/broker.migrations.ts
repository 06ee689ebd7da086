import type { Migration } from './migrate.js';

/**
 * Tables of the durable broker on PostgreSQL (the embedded default), in its own database.
 * Like Kafka, a channel is split into partitions by partition key; each partition is an
 * ordered log (`seq` without gaps, assigned under the partition row's lock so that commit order
 * is seq order); each consumer group keeps a committed offset and a lease per partition.
 */
export const brokerMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'broker-log-groups-offsets',
    sql: `
      CREATE SCHEMA IF NOT EXISTS ferry_broker;
      CREATE TABLE ferry_broker.channels (
        channel    text PRIMARY KEY,
        partitions int  NOT NULL CHECK (partitions > 0)
      );
      CREATE TABLE ferry_broker.partitions (
        channel   text   NOT NULL,
        partition int    NOT NULL,
        next_seq  bigint NOT NULL,
        PRIMARY KEY (channel, partition)
      );
      CREATE TABLE ferry_broker.messages (
        channel       text        NOT NULL,
        partition     int         NOT NULL,
        seq           bigint      NOT NULL,
        message_id    text        NOT NULL,
        partition_key text        NOT NULL,
        headers       jsonb       NOT NULL,
        body          text        NOT NULL,
        published_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (channel, partition, seq)
      );
      CREATE TABLE ferry_broker.offsets (
        channel       text   NOT NULL,
        group_name    text   NOT NULL,
        partition     int    NOT NULL,
        committed_seq bigint NOT NULL DEFAULT 0,
        owner         text,
        lease_until   timestamptz,
        PRIMARY KEY (channel, group_name, partition)
      );
      CREATE TABLE ferry_broker.members (
        channel      text        NOT NULL,
        group_name   text        NOT NULL,
        member_id    text        NOT NULL,
        heartbeat_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (channel, group_name, member_id)
      );
    `,
  },
  {
    version: 2,
    name: 'offsets-hand-outs-after-takeover',
    sql: `
      -- The message a member handing out carefully (after taking a partition over from a member
      -- that stopped) last recorded as handed out, and how many times in a row it did.
      ALTER TABLE ferry_broker.offsets
        ADD COLUMN suspect_seq bigint,
        ADD COLUMN suspect_handouts int NOT NULL DEFAULT 0;
    `,
  },
];
