import { randomBytes, randomUUID } from 'node:crypto';
import { event, Messaging } from '@ferry/core';
import { waitFor } from '@ferry/testing';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { PostgresBroker } from '../broker/postgres-broker.js';
import { withTransaction } from '../database.js';
import { messagingMigrations } from '../migrations/messaging.migrations.js';
import { migrate } from '../migrations/migrate.js';
import { appendWire, PostgresOutbox } from '../outbox/postgres-outbox.js';
import { createPostgresMessaging } from '../runtime/postgres-messaging.js';
import type { TxHandle } from '../tx.js';
import { Noted, RecordingBroker } from './relay.fixtures.js';
import { ReplicationConnection } from './replication-connection.js';
import { dropReplicationSlot, readSlot } from './replication-slot.js';
import { TailingRelay, type TailingRelayOptions } from './tailing-relay.js';
import type { TailingRelayEvent } from './tailing-relay-events.js';

for (const target of postgresTargets()) {
  describe(`tailing relay (${target.name} server)`, () => {
    const service = useTestDatabase(() => target.adminUrl, 'tailing_svc');
    const brokerDb = useTestDatabase(() => target.adminUrl, 'tailing_broker');
    let pool: pg.Pool;
    let broker: PostgresBroker;
    const messaging = new Messaging<TxHandle>(new PostgresOutbox());
    const relays: TailingRelay[] = [];
    const slots = new Set<string>();
    let slotCounter = 0;

    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: service().url, max: 12 });
      await migrate(pool, 'ferry-messaging', messagingMigrations);
      broker = await PostgresBroker.connect({ connectionString: brokerDb().url, leaseMs: 2000 });
    });
    // Slots hold WAL on the server for as long as they exist: drop every one, even after a failure.
    afterEach(async () => {
      await Promise.all(relays.splice(0).map((r) => r.stop()));
      for (const slot of slots) await dropReplicationSlot(pool, slot);
      slots.clear();
    });
    afterAll(async () => {
      await broker?.close();
      await pool?.end();
    });

    /** A fresh slot name for one test, so that tests do not read each other's stream. */
    const newSlot = () => {
      const slot = `ferry_t_tail_${process.pid}_${++slotCounter}_${Date.now().toString(36)}`;
      slots.add(slot);
      return slot;
    };
    const tailer = (
      options: Partial<TailingRelayOptions> & Pick<TailingRelayOptions, 'broker' | 'slotName'>,
    ) => {
      const relay = new TailingRelay({
        pool,
        connectionString: service().url,
        initialBacklog: 'none',
        standbyRetryMs: 100,
        ...options,
      });
      relays.push(relay);
      return relay;
    };
    const publish = (channel: string, key: string, n: number) =>
      withTransaction(pool, (tx) =>
        messaging.publishEvents(tx, { type: channel, id: key }, [event(Noted, { n })]),
      );
    const confirmedLsn = async (slot: string) => (await readSlot(pool, slot))?.confirmedFlushLsn ?? '';
    const lsnAtLeast = async (lsn: string, than: string) =>
      (await pool.query<{ ok: boolean }>('SELECT $1::pg_lsn >= $2::pg_lsn AS ok', [lsn, than])).rows[0]!.ok;
    const currentLsn = async () =>
      (await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;

    it('publishes in commit order, not insert order, across concurrent producers', async () => {
      const recording = new RecordingBroker(broker);
      const relay = tailer({ broker: recording, slotName: newSlot() });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the relay to stream', 10_000);

      // Inserted first, committed last: the stream follows commits.
      const first = await pool.connect();
      const second = await pool.connect();
      try {
        await first.query('BEGIN');
        await messaging.publishEvents(first, { type: 'Swap', id: 'a' }, [event(Noted, { n: 1 })]);
        await second.query('BEGIN');
        await messaging.publishEvents(second, { type: 'Swap', id: 'b' }, [event(Noted, { n: 2 })]);
        await second.query('COMMIT');
        await first.query('COMMIT');
      } finally {
        first.release();
        second.release();
      }

      // Producers run at once; each transaction writes a row, then takes the next number from
      // a counter (whose row lock orders the commits), then writes a row carrying that number.
      await pool.query('CREATE TABLE IF NOT EXISTS tail_counter (id int PRIMARY KEY, n int NOT NULL)');
      await pool.query('INSERT INTO tail_counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0');
      const producers = Array.from({ length: 6 }, async (_, p) => {
        for (let i = 0; i < 20; i++)
          await withTransaction(pool, async (tx) => {
            await messaging.publishEvents(tx, { type: 'Order', id: `p${p}` }, [event(Noted, { n: -1 })]);
            const { rows } = await tx.query<{ n: number }>('UPDATE tail_counter SET n = n + 1 RETURNING n');
            await messaging.publishEvents(tx, { type: 'Order', id: `p${p}` }, [
              event(Noted, { n: rows[0]!.n }),
            ]);
          });
      });
      await Promise.all(producers);
      await waitFor(() => recording.numbers('Order').length === 240, '240 messages', 20_000);

      expect(recording.numbers('Swap')).toEqual([2, 1]);
      const order = recording.acknowledged.filter((m) => m.channel === 'Order');
      const numbered = order.filter((_, i) => i % 2 === 1).map((m) => JSON.parse(m.body).n);
      expect(numbered).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
      for (let i = 0; i < order.length; i += 2) {
        // A transaction's two rows travel together: nothing from another commit between them.
        expect(JSON.parse(order[i]!.body).n).toBe(-1);
        expect(order[i]!.partitionKey).toBe(order[i + 1]!.partitionKey);
      }
    });

    it('publishes nothing of rolled-back transactions or rolled-back savepoints', async () => {
      const recording = new RecordingBroker(broker);
      const relay = tailer({ broker: recording, slotName: newSlot() });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the relay to stream', 10_000);

      await withTransaction(pool, async (tx) => {
        await messaging.publishEvents(tx, { type: 'Undo', id: 'k' }, [event(Noted, { n: 1 })]);
        throw new Error('business rule says no');
      }).catch(() => {});
      await withTransaction(pool, async (tx) => {
        await tx.query('SAVEPOINT attempt');
        await messaging.publishEvents(tx, { type: 'Undo', id: 'k' }, [event(Noted, { n: 2 })]);
        await tx.query('ROLLBACK TO SAVEPOINT attempt');
        await messaging.publishEvents(tx, { type: 'Undo', id: 'k' }, [event(Noted, { n: 3 })]);
      });
      await publish('Undo', 'k', 4);
      await waitFor(() => recording.numbers('Undo').includes(4), 'the last message', 10_000);
      expect(recording.numbers('Undo')).toEqual([3, 4]);
    });

    it('confirms no position while the broker fails, and publishes everything once it recovers', async () => {
      const slot = newSlot();
      const recording = new RecordingBroker(broker);
      recording.down = true;
      const relay = tailer({ broker: recording, slotName: slot });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the relay to stream', 10_000);

      // Positions are taken before the last commit, not after it: the server is shared, and WAL
      // that other databases write after our commit is only confirmed at the next keepalive.
      for (let n = 0; n < 4; n++) await publish('Outage', 'k', n);
      const beforeLast = await currentLsn();
      await publish('Outage', 'k', 4);
      await waitFor(() => recording.attempts >= 1, 'a failed attempt', 10_000);
      const held = await confirmedLsn(slot);
      await waitFor(() => recording.attempts >= 3, 'more failed attempts', 10_000);
      expect(await confirmedLsn(slot)).toBe(held);
      expect(await lsnAtLeast(held, beforeLast)).toBe(false);
      expect((await relay.lag()).messages).toBe(5);

      recording.down = false;
      await waitFor(() => recording.numbers('Outage').length === 5, 'all five after recovery', 10_000);
      expect(recording.numbers('Outage')).toEqual([0, 1, 2, 3, 4]);
      await waitFor(
        async () => lsnAtLeast(await confirmedLsn(slot), beforeLast),
        'the slot to advance',
        10_000,
      );
    });

    it('resumes after a restart from the confirmed position: the unconfirmed again, the confirmed not', async () => {
      const slot = newSlot();
      const before = new RecordingBroker(broker);
      const relay = tailer({ broker: before, slotName: slot });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the relay to stream', 10_000);
      for (let n = 0; n < 2; n++) await publish('Resume', 'k', n);
      const beforeThird = await currentLsn();
      await publish('Resume', 'k', 2);
      await waitFor(() => before.numbers('Resume').length === 3, 'the first three', 10_000);
      await waitFor(
        async () => lsnAtLeast(await confirmedLsn(slot), beforeThird),
        'their confirmation',
        10_000,
      );

      // The broker fails: the next three are received but never acknowledged, and the relay stops.
      before.down = true;
      for (let n = 3; n < 6; n++) await publish('Resume', 'k', n);
      await waitFor(() => before.attempts >= 5, 'failed attempts', 10_000);
      await relay.stop();
      for (let n = 6; n < 8; n++) await publish('Resume', 'k', n); // written while no relay runs

      const after = new RecordingBroker(broker);
      const restarted = tailer({ broker: after, slotName: slot });
      await restarted.start();
      await waitFor(() => after.numbers('Resume').length >= 5, 'the rest', 10_000);
      expect(before.numbers('Resume')).toEqual([0, 1, 2]);
      expect(after.numbers('Resume')).toEqual([3, 4, 5, 6, 7]);
    });

    it('keeps one active tailer per slot; a standby takes over when it stops', async () => {
      const slot = newSlot();
      const events: TailingRelayEvent[] = [];
      const first = new RecordingBroker(broker);
      const second = new RecordingBroker(broker);
      const active = tailer({ broker: first, slotName: slot, name: 'first' });
      const standby = tailer({
        broker: second,
        slotName: slot,
        name: 'second',
        onEvent: (e) => events.push(e),
      });
      await active.start();
      await waitFor(() => active.isActive(), 'the first to stream', 10_000);
      await standby.start();
      await waitFor(() => events.some((e) => e.kind === 'standby'), 'the second to stand by', 10_000);

      for (let n = 0; n < 3; n++) await publish('Handover', 'k', n);
      await waitFor(() => first.numbers('Handover').length === 3, 'three through the first', 10_000);
      expect(standby.isActive()).toBe(false);

      await active.stop();
      await waitFor(() => standby.isActive(), 'the standby to take over', 10_000);
      for (let n = 3; n < 6; n++) await publish('Handover', 'k', n);
      await waitFor(() => second.numbers('Handover').length === 3, 'three through the second', 10_000);
      expect(first.numbers('Handover')).toEqual([0, 1, 2]);
      expect(second.numbers('Handover')).toEqual([3, 4, 5]);
      expect(events.filter((e) => e.kind === 'active')).toHaveLength(1);
    });

    it('reconnects when the server ends its stream, and loses nothing', async () => {
      const slot = newSlot();
      const recording = new RecordingBroker(broker);
      const events: TailingRelayEvent[] = [];
      const relay = tailer({ broker: recording, slotName: slot, onEvent: (e) => events.push(e) });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the relay to stream', 10_000);
      for (let n = 0; n < 3; n++) await publish('Cut', 'k', n);
      const walsender = (await readSlot(pool, slot))!.activePid;
      await pool.query('SELECT pg_terminate_backend($1)', [walsender]);
      for (let n = 3; n < 6; n++) await publish('Cut', 'k', n);
      await waitFor(() => new Set(recording.numbers('Cut')).size === 6, 'all six', 15_000);
      expect(events.some((e) => e.kind === 'stream-failed')).toBe(true);
      expect(events.filter((e) => e.kind === 'active').length).toBeGreaterThanOrEqual(2);
      // Duplicates may occur (what was published but not yet confirmed); order never breaks.
      const firstSeen = recording.numbers('Cut').filter((n, i, all) => all.indexOf(n) === i);
      expect(firstSeen).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it('ends the stream of a tailer that lost its lock but still streams, after the grace period', async () => {
      const slot = newSlot();
      const recording = new RecordingBroker(broker);
      const events: TailingRelayEvent[] = [];
      const relay = tailer({ broker: recording, slotName: slot, onEvent: (e) => events.push(e) });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the slot to exist', 10_000);
      await relay.stop();
      // The server releases the slot when its walsender exits, a moment after the client closed.
      await waitFor(
        async () => (await readSlot(pool, slot))?.activePid === null,
        'the slot to be free',
        10_000,
      );

      // A stream without the lock, as a tailer whose lock connection died would leave behind.
      const stale = await ReplicationConnection.connect(service().url);
      await stale.stream(slot, 'ferry_outbox', () => {});
      const successor = tailer({
        broker: recording,
        slotName: slot,
        takeoverGraceMs: 300,
        onEvent: (e) => events.push(e),
      });
      await successor.start();
      await waitFor(() => successor.isActive(), 'the successor to stream', 10_000);
      expect(await stale.closed).toBeInstanceOf(Error);
      expect(events.some((e) => e.kind === 'takeover')).toBe(true);
      await publish('Stale', 'k', 1);
      await waitFor(() => recording.numbers('Stale').length === 1, 'delivery after the takeover', 10_000);
    });

    it('publishes rows committed before its slot existed, unless the polling relay published them', async () => {
      await publish('Backlog', 'k', 1);
      await publish('Backlog', 'k', 2);
      await publish('Backlog', 'k', 3);
      await pool.query(
        `UPDATE ferry.outbox SET published_at = now() WHERE channel = 'Backlog' AND body::jsonb ->> 'n' = '2'`,
      );
      const recording = new RecordingBroker(broker);
      const events: TailingRelayEvent[] = [];
      const relay = tailer({
        broker: recording,
        slotName: newSlot(),
        initialBacklog: 'unpublished',
        onEvent: (e) => events.push(e),
      });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the relay to stream', 10_000);
      await publish('Backlog', 'k', 4);
      await waitFor(() => recording.numbers('Backlog').includes(4), 'the new row', 10_000);
      expect(recording.numbers('Backlog')).toEqual([1, 3, 4]);
      const created = events.find((e) => e.kind === 'slot-created');
      expect(created && 'backlog' in created && created.backlog).toBeGreaterThanOrEqual(2);
    });

    it('purges rows past the retention without losing inserts the slot has yet to stream', async () => {
      const slot = newSlot();
      const recording = new RecordingBroker(broker);
      const relay = tailer({ broker: recording, slotName: slot, retentionMs: 0 });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the slot to exist', 10_000);
      await relay.stop();

      for (let n = 0; n < 3; n++) await publish('Purge', 'k', n);
      // A body too large to stay in the row (TOASTed out of line): the WAL still holds it whole.
      const big = JSON.stringify({ n: 99, pad: randomBytes(150_000).toString('base64') });
      const bigId = randomUUID();
      await withTransaction(pool, (tx) =>
        appendWire(tx, [{ id: bigId, channel: 'Purge', partitionKey: 'k', headers: {}, body: big }]),
      );
      // One as a polling relay that ran on this outbox before would have left it: marked published.
      await pool.query(
        `UPDATE ferry.outbox SET published_at = now() WHERE channel = 'Purge' AND body::jsonb ->> 'n' = '1'`,
      );
      expect(await relay.purge()).toBeGreaterThanOrEqual(4);
      const left = await pool.query(`SELECT count(*)::int AS n FROM ferry.outbox WHERE channel = 'Purge'`);
      expect(left.rows[0].n).toBe(0);

      const keeper = tailer({ broker: recording, slotName: slot, retentionMs: 3600_000 });
      await keeper.start();
      await waitFor(() => recording.numbers('Purge').length === 4, 'the purged rows from the WAL', 10_000);
      expect(recording.numbers('Purge')).toEqual([0, 1, 2, 99]);
      expect(recording.acknowledged.find((m) => m.id === bigId)?.body).toBe(big);
      await publish('Purge', 'k', 3);
      expect(await keeper.purge()).toBe(0);
      const kept = await pool.query(`SELECT count(*)::int AS n FROM ferry.outbox WHERE channel = 'Purge'`);
      expect(kept.rows[0].n).toBe(1);
    });

    it('reports the slot lag in bytes and warns past the threshold', async () => {
      const slot = newSlot();
      const recording = new RecordingBroker(broker);
      recording.down = true;
      const events: TailingRelayEvent[] = [];
      const relay = tailer({
        broker: recording,
        slotName: slot,
        lagCheckIntervalMs: 50,
        lagWarnBytes: 1,
        onEvent: (e) => events.push(e),
      });
      await relay.start();
      await waitFor(() => relay.isActive(), 'the relay to stream', 10_000);
      await publish('Lag', 'k', 1);
      await waitFor(() => events.some((e) => e.kind === 'slot-lag-warning'), 'a lag warning', 10_000);
      // The slot can lag past one byte (other writes on the server) before the row is decoded:
      // wait for the undeliverable message to be held, then check both figures.
      await waitFor(async () => (await relay.lag()).messages === 1, 'the message to be held', 10_000);
      const lag = await relay.lag();
      expect(lag.bytes).toBeGreaterThan(0);
      expect(lag.messages).toBe(1);
      expect(events.some((e) => e.kind === 'slot-lag' && e.bytes > 0)).toBe(true);
      recording.down = false;
      await waitFor(async () => (await relay.lag()).messages === 0, 'the lag to clear', 10_000);
    });

    it('is selected by configuration in createPostgresMessaging and delivers to consumers', async () => {
      const slot = newSlot();
      const m = createPostgresMessaging({
        connectionString: service().url,
        broker,
        poolSize: 2,
        relay: { kind: 'tailing', slotName: slot },
      });
      const got: number[] = [];
      const sub = await broker.subscribe(
        { channel: 'Wired', group: 'g' },
        async (d) => void got.push(JSON.parse(d.message.body).n),
      );
      try {
        await m.start();
        expect(m.relay).toBeInstanceOf(TailingRelay);
        await waitFor(() => (m.relay as TailingRelay).isActive(), 'the relay to stream', 10_000);
        await withTransaction(m.pool, (tx) =>
          m.messaging.publishEvents(tx, { type: 'Wired', id: 'k' }, [event(Noted, { n: 7 })]),
        );
        await waitFor(() => got.length === 1, 'the delivery', 10_000);
        expect(got).toEqual([7]);
      } finally {
        await sub.close();
        await m.stop();
      }
    });
  });
}
