import { MessageConsumer } from '@ferry/core';
import { PostgresBroker, PostgresDeadLetterStore, PostgresInbox } from '@ferry/postgres';
import pg from 'pg';
import { Step } from './poison-step.js';

/*
 * A consumer process for the poison test: one handler, which records each message's effect, and
 * kills its own process (SIGKILL, as a segfault or the OOM killer would) on a message marked poison.
 */
const config = JSON.parse(process.env.FERRY_POISON_CONFIG ?? '{}') as {
  brokerUrl: string;
  consumerDbUrl: string;
  channel: string;
  maxAbandoned: number;
};
const broker = await PostgresBroker.connect({
  connectionString: config.brokerUrl,
  leaseMs: 1000,
  partitions: 1,
});
const pool = new pg.Pool({ connectionString: config.consumerDbUrl, max: 4 });
pool.on('error', () => {});
const consumer = new MessageConsumer<pg.PoolClient>({
  group: 'poison-test',
  broker,
  inbox: new PostgresInbox(pool),
  deadLetters: new PostgresDeadLetterStore(pool),
  maxAbandoned: config.maxAbandoned,
}).on(
  Step,
  async ({ tx, message }) => {
    if (message.payload.poison) process.kill(process.pid, 'SIGKILL');
    await tx.query('INSERT INTO effects (message_id, key, n) VALUES ($1, $2, $3)', [
      message.id,
      message.payload.key,
      message.payload.n,
    ]);
  },
  config.channel,
);
await consumer.start();
console.log('consumer ready');
