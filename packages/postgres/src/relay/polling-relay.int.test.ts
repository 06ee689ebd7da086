import { event, MemoryBroker, Messaging, newMessageId, toWire } from '@ferry/core';
import { TcpProxy, waitFor } from '@ferry/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { PostgresBroker } from '../broker/postgres-broker.js';
import { withTransaction } from '../database.js';
import { messagingMigrations } from '../migrations/messaging.migrations.js';
import { migrate } from '../migrations/migrate.js';
import { PostgresOutbox } from '../outbox/postgres-outbox.js';
import { PollingRelay, type PollingRelayOptions } from './polling-relay.js';
import { Noted, RecordingBroker } from './relay.fixtures.js';

for (const target of postgresTargets()) {
  describe(`polling relay (${target.name} server)`, () => {
    const service = useTestDatabase(() => target.adminUrl, 'relay_svc');
    const brokerDb = useTestDatabase(() => target.adminUrl, 'relay_broker');
    let pool: pg.Pool;
    let broker: PostgresBroker;
    const messaging = new Messaging(new PostgresOutbox());

    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: service().url });
      await migrate(pool, 'ferry-messaging', messagingMigrations);
      broker = await PostgresBroker.connect({ connectionString: brokerDb().url, leaseMs: 2000 });
    });
    afterAll(async () => {
      await broker.close();
      await pool.end();
    });

    const publish = (channel: string, key: string, n: number) =>
      withTransaction(pool, (tx) =>
        messaging.publishEvents(tx, { type: channel, id: key }, [event(Noted, { n })]),
      );
    /** A relay on the service database and the broker, with `options` laid over. */
    const relayWith = (options: Partial<PollingRelayOptions> = {}) =>
      new PollingRelay({ pool, connectionString: service().url, broker, ...options });
    const unpublished = async () =>
      Number(
        (await pool.query('SELECT count(*) AS n FROM ferry.outbox WHERE published_at IS NULL')).rows[0].n,
      );

    it('wakes on NOTIFY: a committed message leaves in milliseconds, not a poll interval', async () => {
      const relay = relayWith({ pollIntervalMs: 60_000 });
      await relay.start();
      const got: number[] = [];
      const sub = await broker.subscribe(
        { channel: 'Fast', group: 'g' },
        async () => void got.push(performance.now()),
      );
      await new Promise((r) => setTimeout(r, 200)); // the first poll has run; from now on only NOTIFY wakes it
      const sentAt = performance.now();
      await publish('Fast', 'k', 1);
      await waitFor(() => got.length === 1, 'delivery', 5000);
      await sub.close();
      await relay.stop();
      expect(got[0]! - sentAt).toBeLessThan(1000);
    });

    it('a start that failed (its listener could not connect) can be retried, and the relay then runs', async () => {
      const url = new URL(service().url);
      url.searchParams.delete('host');
      const proxy = await TcpProxy.start(url.hostname, Number(url.port) || 5432);
      const relay = relayWith({ connectionString: proxy.route(url.toString()) });
      const got: number[] = [];
      const sub = await broker.subscribe({ channel: 'Retried', group: 'g' }, async (d) => {
        got.push(JSON.parse(d.message.body).n);
      });
      try {
        proxy.refuse();
        await expect(relay.start()).rejects.toThrow();
        expect(relay.isRunning()).toBe(false);
        proxy.accept();
        await relay.start();
        expect(relay.isRunning()).toBe(true);
        await publish('Retried', 'k', 7);
        await waitFor(() => got.length === 1, 'delivery', 5000);
        expect(got).toEqual([7]);
      } finally {
        await sub.close();
        await relay.stop();
        await proxy.close();
      }
    });

    it('finds at its second look a row whose producer straddled its announcement (so sent no NOTIFY), not at the next poll', async () => {
      const relay = relayWith({ pollIntervalMs: 60_000, secondLookMs: 1000 });
      const got: string[] = [];
      const sub = await broker.subscribe({ channel: 'Straddle', group: 'g' }, async ({ message }) => {
        got.push(message.id);
      });
      await relay.start();
      const waitingUntil = async () =>
        String((await pool.query('SELECT waiting_until::text AS w FROM ferry.relay_state')).rows[0].w);
      await waitFor(async () => (await waitingUntil()) !== 'null', 'the relay to announce that it waits');
      // A producer's row, inserted as a statement that read the state before the announcement would
      // be: no wake-up. It commits after the relay woke, found nothing, announced and looked again.
      const producer = await pool.connect();
      const id = newMessageId();
      try {
        await producer.query('BEGIN');
        await producer.query(
          `INSERT INTO ferry.outbox (message_id, channel, partition_key, headers, body) VALUES ($1, 'Straddle', 'k', '{}', '{"n":1}')`,
          [id],
        );
        const before = await waitingUntil();
        await pool.query("SELECT pg_notify('ferry_outbox', '')");
        await waitFor(async () => (await waitingUntil()) !== before, 'the relay to announce again');
        await producer.query('COMMIT');
      } finally {
        producer.release();
      }
      const committedAt = performance.now();
      await waitFor(() => got.includes(id), 'the straddling row to be published', 10_000);
      expect(performance.now() - committedAt).toBeLessThan(5000);
      await sub.close();
      await relay.stop();
    });

    it('marks rows published only after the broker acknowledged them, and retries after an outage', async () => {
      const switchable = new RecordingBroker(broker);
      switchable.down = true;
      const relay = relayWith({ broker: switchable, pollIntervalMs: 100 });
      await relay.start();
      for (let n = 0; n < 5; n++) await publish('Outage', 'k', n);
      await waitFor(() => switchable.attempts >= 2, 'failed attempts', 5000);
      expect(await unpublished()).toBe(5);
      const got: number[] = [];
      const sub = await broker.subscribe(
        { channel: 'Outage', group: 'g' },
        async (d) => void got.push(JSON.parse(d.message.body).n),
      );
      switchable.down = false;
      await waitFor(() => got.length === 5, 'all five after recovery', 10_000);
      await sub.close();
      await relay.stop();
      expect(got).toEqual([0, 1, 2, 3, 4]);
      expect(await unpublished()).toBe(0);
    });

    it('keeps per-key order with three relays running at once', async () => {
      const relays = [1, 2, 3].map((i) =>
        relayWith({
          batchSize: 7,
          name: `relay-${i}`,
          onEvent: (e) => e.kind === 'publish-failed' && console.error(e.error),
        }),
      );
      const seen = new Map<string, number[]>();
      const sub = await broker.subscribe({ channel: 'Many', group: 'g', concurrency: 16 }, async (d) => {
        seen.set(d.message.partitionKey, [
          ...(seen.get(d.message.partitionKey) ?? []),
          JSON.parse(d.message.body).n,
        ]);
      });
      await Promise.all(relays.map((r) => r.start()));
      const writers = Array.from({ length: 10 }, async (_, k) => {
        for (let n = 0; n < 40; n++) await publish('Many', `key-${k}`, n);
      });
      await Promise.all(writers);
      await waitFor(
        () => [...seen.values()].reduce((s, v) => s + v.length, 0) >= 400,
        '400 deliveries',
        30_000,
      );
      await Promise.all(relays.map((r) => r.stop()));
      await sub.close();
      for (const [key, ns] of seen)
        expect(ns.join(','), key).toEqual(Array.from({ length: 40 }, (_, i) => i).join(','));
    });

    it('reports its lag and purges published rows after the retention', async () => {
      const relay = relayWith({ retentionMs: 0 });
      await publish('Lag', 'k', 1);
      const lag = await relay.lag();
      expect(lag.messages).toBeGreaterThanOrEqual(1);
      expect(lag.oldestMs).toBeGreaterThanOrEqual(0);
      while ((await relay.relayBatch()) > 0);
      expect((await relay.lag()).messages).toBe(0);
      await publish('Lag', 'k', 2); // unpublished: must survive the purge
      const purged = await relay.purge();
      expect(purged).toBeGreaterThan(0);
      const left = await pool.query('SELECT published_at FROM ferry.outbox');
      expect(left.rows).toEqual([{ published_at: null }]);
    });
  });

  describe(`outbox upgraded from jsonb headers (${target.name} server)`, () => {
    const service = useTestDatabase(() => target.adminUrl, 'relay_upgrade');

    it('relays rows written before the headers column became text, and after, with their headers intact', async () => {
      const pool = new pg.Pool({ connectionString: service().url });
      const broker = new RecordingBroker(new MemoryBroker());
      try {
        const messaging = new Messaging(new PostgresOutbox());
        const publishNoted = (n: number) =>
          withTransaction(pool, (tx) =>
            messaging.publishEvents(tx, { type: 'Upgrade', id: 'k' }, [event(Noted, { n })]),
          );
        // A database as messaging migration 2 left it, holding a row a producer wrote then.
        await migrate(pool, 'ferry-messaging', messagingMigrations.slice(0, 2));
        const [before] = await publishNoted(1);
        await migrate(pool, 'ferry-messaging', messagingMigrations);
        const column = await pool.query(
          "SELECT data_type FROM information_schema.columns WHERE table_schema = 'ferry' AND table_name = 'outbox' AND column_name = 'headers'",
        );
        expect(column.rows).toEqual([{ data_type: 'text' }]);
        const [after] = await publishNoted(2);
        const relay = new PollingRelay({ pool, connectionString: service().url, broker });
        while ((await relay.relayBatch()) > 0);
        expect(broker.acknowledged.map((m) => [m.id, m.headers])).toEqual([
          [before!.id, toWire(before!).headers],
          [after!.id, toWire(after!).headers],
        ]);
      } finally {
        await pool.end();
      }
    });
  });
}
