import { defineEvent, MessageConsumer } from '@ferry/core';
import { isTransientPgError, PostgresDeadLetterStore, PostgresInbox } from '@ferry/postgres';
import pg from 'pg';
import { z } from 'zod';
import { openBroker, readConfig } from './crash-config.js';
import { retryStart } from './retry-start.js';

/*
 * A consumer process for the crash test: two groups, each recording every message's effect in
 * its own table row (no unique constraint: a second effect would show as a second row).
 */
export const Tick = defineEvent('Tick', z.object({ key: z.string(), seq: z.number().int() }));

const config = readConfig();
const broker = await retryStart('broker', () => openBroker(config));
const pool = new pg.Pool({ connectionString: config.consumerDbUrl, max: 12 });
pool.on('error', () => {});
const inbox = new PostgresInbox(pool);
const deadLetters = new PostgresDeadLetterStore(pool);
const consumers = ['group-a', 'group-b'].map((group) =>
  new MessageConsumer<pg.PoolClient>({
    group,
    broker,
    inbox,
    deadLetters,
    concurrency: 8,
    isTransient: isTransientPgError,
    onEvent: (e) => {
      if (e.kind === 'duplicate')
        void pool.query('INSERT INTO duplicates (group_name) VALUES ($1)', [group]).catch(() => {});
    },
  }).on(
    Tick,
    async ({ tx, message }) => {
      await tx.query('INSERT INTO effects (group_name, message_id, key, seq) VALUES ($1, $2, $3, $4)', [
        group,
        message.id,
        message.payload.key,
        message.payload.seq,
      ]);
    },
    config.channel,
  ),
);
for (const consumer of consumers) await retryStart(consumer.group, () => consumer.start());
console.log('consumer ready');
process.on('SIGTERM', async () => {
  for (const consumer of consumers) await consumer.stop();
  await broker.close();
  await pool.end();
  process.exit(0);
});
