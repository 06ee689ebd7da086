import { defineEvent, event, Messaging } from '@ferry/core';
import { ensureDatabase, databaseUrl, migrate, messagingMigrations, PostgresOutbox, withTransaction } from '@ferry/postgres';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { dropDatabase } from '../pg-test-database.js';
import type { CrashConfig } from './crash-config.js';
import { ProcessHandle } from './process-handle.js';

const Tick = defineEvent('Tick', z.object({ key: z.string(), seq: z.number().int() }));
const TOTAL = Number(process.env.FERRY_CRASH_MESSAGES ?? 10_000);
const KEYS = 40;
const PER_TX = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (min: number, max: number) => min + Math.random() * (max - min);

/**
 * The crash test: messages flow producer outbox → relay process → broker → consumer process
 * (two consumer groups) while both processes are killed with SIGKILL at random moments and
 * restarted. Every message must have its effect exactly once per group, in per-key order,
 * none lost and none dead-lettered.
 */
export function crashScenario(name: string, makeConfig: (dbs: { producer: string; consumer: string; broker: string }) => Omit<CrashConfig, 'producerDbUrl' | 'consumerDbUrl'>) {
  describe(`crash test: ${name}`, () => {
    const admin = () => inject('embeddedPostgresUrl');
    const suffix = `${process.pid}_${Date.now().toString(36)}`;
    const names = { producer: `ferry_crash_producer_${suffix}`, consumer: `ferry_crash_consumer_${suffix}`, broker: `ferry_crash_broker_${suffix}` };
    let failed = true;

    afterAll(async () => {
      if (failed) return console.log(`[ferry] crash test failed: kept databases ${Object.values(names).join(', ')}`);
      for (const db of Object.values(names)) await dropDatabase(admin(), db);
    });

    it(`invariant: nothing is lost and each message takes effect once per group when relay and consumer are SIGKILLed (${TOTAL} messages)`, async () => {
      const urls = {
        producer: databaseUrl(admin(), names.producer),
        consumer: databaseUrl(admin(), names.consumer),
        broker: databaseUrl(admin(), names.broker),
      };
      for (const db of Object.values(names)) await ensureDatabase(admin(), db);
      const producer = new pg.Pool({ connectionString: urls.producer, max: 4 });
      const consumerDb = new pg.Pool({ connectionString: urls.consumer, max: 2 });
      await migrate(producer, 'ferry-messaging', messagingMigrations);
      await migrate(consumerDb, 'ferry-messaging', messagingMigrations);
      await consumerDb.query(`CREATE TABLE effects (id bigint GENERATED ALWAYS AS IDENTITY, group_name text, message_id uuid, key text, seq int);
                              CREATE TABLE duplicates (group_name text)`);
      const config: CrashConfig = { ...makeConfig(urls), producerDbUrl: urls.producer, consumerDbUrl: urls.consumer };
      const env = { FERRY_CRASH_CONFIG: JSON.stringify(config) };
      const relay = new ProcessHandle('test/crash/relay.process.ts', env);
      const consumer = new ProcessHandle('test/crash/consumer.process.ts', env);
      await Promise.all([relay.start(), consumer.start()]);

      const messaging = new Messaging(new PostgresOutbox());
      const seqs = new Array<number>(KEYS).fill(0);
      let produced = 0;
      const produce = (async () => {
        while (produced < TOTAL) {
          await withTransaction(producer, async (tx) => {
            const n = Math.min(PER_TX, TOTAL - produced);
            for (let i = 0; i < n; i++) {
              const k = (produced + i) % KEYS;
              await messaging.publishEvents(tx, { type: config.channel, id: `key-${k}` }, [event(Tick, { key: `key-${k}`, seq: seqs[k]!++ })]);
            }
            produced += n;
          });
          await sleep(5);
        }
      })();

      const handled = async () => {
        const { rows } = await consumerDb.query<{ n: number }>('SELECT count(DISTINCT message_id)::int AS n FROM effects');
        return rows[0]!.n;
      };
      // Kill at random moments while messages flow: the relay, the consumer, or both at once.
      for (let round = 0; round < 8; round++) {
        await sleep(between(300, 1500));
        const victims = [[relay], [consumer], [relay, consumer]][round % 3]!;
        await Promise.all(victims.map((v) => v.kill()));
        await sleep(between(50, 400));
        await Promise.all(victims.map((v) => v.start()));
      }
      await produce;
      const deadline = Date.now() + 240_000;
      while ((await handled()) < TOTAL * 2 && Date.now() < deadline) await sleep(250);
      await Promise.all([relay.stop(), consumer.stop()]);

      const perGroup = await consumerDb.query<{ group_name: string; effects: number; distinct_messages: number }>(
        `SELECT group_name, count(*)::int AS effects, count(DISTINCT message_id)::int AS distinct_messages FROM effects GROUP BY 1 ORDER BY 1`,
      );
      const dead = await consumerDb.query<{ n: number }>('SELECT count(*)::int AS n FROM ferry.dead_letters');
      const dups = await consumerDb.query<{ n: number }>('SELECT count(*)::int AS n FROM duplicates');
      const outOfOrder = await consumerDb.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (
           SELECT seq, lag(seq) OVER (PARTITION BY group_name, key ORDER BY id) AS previous FROM effects) s
          WHERE previous IS NOT NULL AND seq <> previous + 1`,
      );
      console.log(
        `[ferry] crash test ${name}: relay killed ${relay.kills}×, consumer killed ${consumer.kills}×; ` +
          `${dups.rows[0]!.n} redelivered duplicates absorbed by the inbox; effects ${JSON.stringify(perGroup.rows)}`,
      );
      expect(relay.kills + consumer.kills).toBeGreaterThanOrEqual(8);
      expect(perGroup.rows).toEqual([
        { group_name: 'group-a', effects: TOTAL, distinct_messages: TOTAL },
        { group_name: 'group-b', effects: TOTAL, distinct_messages: TOTAL },
      ]);
      expect(dead.rows[0]!.n).toBe(0);
      expect(outOfOrder.rows[0]!.n).toBe(0);
      await producer.end();
      await consumerDb.end();
      failed = false;
    });
  });
}

crashScenario('polling relay × PostgreSQL broker', (dbs) => ({
  broker: 'postgres',
  brokerUrl: dbs.broker,
  namespace: 'crash',
  relay: 'polling',
  channel: 'Ticks',
}));
