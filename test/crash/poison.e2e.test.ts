import { type Message, Messaging, toWire } from '@ferry/core';
import { databaseUrl, ensureDatabase, messagingMigrations, migrate, PostgresBroker } from '@ferry/postgres';
import pg from 'pg';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { dropDatabase } from '../pg-test-database.js';
import { Step } from './poison-step.js';
import { ProcessHandle } from './process-handle.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MESSAGES = 30;
const KEYS = 3;
const POISON = 10;
const MAX_ABANDONED = 3;

/**
 * A message whose handler kills the consumer's process (SIGKILL, as a segfault or the OOM killer
 * would): every process that takes it dies before settling it, so retries inside the process never
 * run. The PostgreSQL broker counts the hand-outs of such a message across the takeovers, and the
 * consumer dead-letters it at `maxAbandoned`; the other messages, before and after it, have their
 * effect once each, in key order. The test restarts the process whenever it dies, as an
 * orchestrator would.
 */
describe('crash loop: a message that kills its consumer process (PostgreSQL broker)', () => {
  it('invariant: one bad message never stops a consumer: one that kills its process is dead-lettered after maxAbandoned hand-outs, and the rest flow', async () => {
    const admin = inject('embeddedPostgresUrl');
    const suffix = `${process.pid}_${Date.now().toString(36)}`;
    const names = { broker: `poison_broker_${suffix}`, consumer: `poison_consumer_${suffix}` };
    for (const name of Object.values(names)) await ensureDatabase(admin, name);
    const urls = { broker: databaseUrl(admin, names.broker), consumer: databaseUrl(admin, names.consumer) };
    const consumerDb = new pg.Pool({ connectionString: urls.consumer, max: 2 });
    consumerDb.on('error', () => {});
    let ended = false;
    await migrate(consumerDb, 'ferry-messaging', messagingMigrations);
    await consumerDb.query(
      'CREATE TABLE effects (id bigint GENERATED ALWAYS AS IDENTITY, message_id uuid, key text, n int)',
    );

    // The messages, built as a producer's outbox would hold them, published straight to the broker.
    const channel = `Steps${suffix}`;
    const built: Message[] = [];
    const messaging = new Messaging<undefined>({
      append: async (_tx, messages) => void built.push(...messages),
    });
    for (let n = 0; n < MESSAGES; n++) {
      const key = `key-${n % KEYS}`;
      await messaging.publishEvents(undefined, { type: channel, id: key }, [
        { type: Step, payload: { key, n, poison: n === POISON } },
      ]);
    }
    const broker = await PostgresBroker.connect({ connectionString: urls.broker, partitions: 1 });
    await broker.publish(built.map(toWire));
    await broker.close();

    const consumer = new ProcessHandle('test/crash/poison-consumer.process.ts', {
      FERRY_POISON_CONFIG: JSON.stringify({
        brokerUrl: urls.broker,
        consumerDbUrl: urls.consumer,
        channel,
        maxAbandoned: MAX_ABANDONED,
      }),
    });
    onTestFinished(async () => {
      await consumer.dispose();
      if (!ended) await consumerDb.end();
    });

    const counts = async () => {
      const { rows } = await consumerDb.query<{ effects: number; dead: number }>(
        'SELECT (SELECT count(*)::int FROM effects) AS effects, (SELECT count(*)::int FROM ferry.dead_letters) AS dead',
      );
      return rows[0]!;
    };
    await consumer.start();
    const deadline = Date.now() + 90_000;
    for (;;) {
      const { effects, dead } = await counts();
      if (effects >= MESSAGES - 1 && dead >= 1) break;
      if (Date.now() > deadline)
        throw new Error(
          `stuck at ${effects} effects, ${dead} dead letters:\n${consumer.output.slice(-3000)}`,
        );
      if (!consumer.running) await consumer.start(); // an orchestrator restarting the crashed process
      await sleep(50);
    }
    await consumer.stop();

    const { rows: dead } = await consumerDb.query<{ message_id: string; reason: string; attempts: number }>(
      'SELECT message_id, reason, attempts FROM ferry.dead_letters',
    );
    expect(dead).toEqual([
      {
        message_id: built[POISON]!.id,
        reason: expect.stringMatching(/^abandoned 3 times: each consumer that took it stopped/),
        attempts: MAX_ABANDONED,
      },
    ]);
    const { rows: effects } = await consumerDb.query<{ key: string; n: number }>(
      'SELECT key, n FROM effects ORDER BY id',
    );
    // Every other message once; each key's in order.
    expect(effects.map((e) => e.n).sort((a, b) => a - b)).toEqual(
      Array.from({ length: MESSAGES }, (_, n) => n).filter((n) => n !== POISON),
    );
    for (let k = 0; k < KEYS; k++) {
      const ns = effects.filter((e) => e.key === `key-${k}`).map((e) => e.n);
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
    }
    // The first death in the normal hand-out, then one per careful hand-out until the count is reached.
    expect(consumer.unexpectedExits).toBe(MAX_ABANDONED + 1);

    // Passed: drop what it made (a failed run keeps its databases for inspection).
    ended = true;
    await consumerDb.end();
    for (const name of Object.values(names)) await dropDatabase(admin, name);
  });
});
