import { defineEvent, event, Messaging } from '@ferry/core';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { countingPool } from '../../../../test/counting-pool.js';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { withTransaction } from '../database.js';
import { messagingMigrations } from '../migrations/messaging.migrations.js';
import { migrate } from '../migrations/migrate.js';
import { PostgresOutbox } from './postgres-outbox.js';
import { relayWakeStateOf } from './relay-wake-state.js';

const OrderCreated = defineEvent('OrderCreated', z.object({ orderId: z.string() }), 'Order');

for (const target of postgresTargets()) {
  describe(`PostgreSQL outbox (${target.name} server)`, () => {
    const db = useTestDatabase(() => target.adminUrl, 'outbox');
    let pool: pg.Pool;
    const messaging = new Messaging(new PostgresOutbox());

    // node-postgres 8 warns (once) when a query is queued on a busy client; version 9 will refuse it.
    const queuedWarnings: string[] = [];
    const onWarning = (warning: Error) => {
      if (/already executing a query/.test(warning.message)) queuedWarnings.push(warning.message);
    };
    beforeAll(async () => {
      process.on('warning', onWarning);
      pool = new pg.Pool({ connectionString: db().url });
      await migrate(pool, 'ferry-messaging', messagingMigrations);
      await pool.query('CREATE TABLE orders (id text PRIMARY KEY)');
    });
    afterAll(async () => {
      process.off('warning', onWarning);
      await pool.end();
    });

    const rows = async (id: string) => {
      const orders = await pool.query('SELECT 1 FROM orders WHERE id = $1', [id]);
      const outbox = await pool.query(
        "SELECT channel, partition_key, headers::jsonb->>'type' AS type FROM ferry.outbox WHERE partition_key = $1",
        [id],
      );
      return { orders: orders.rowCount, outbox: outbox.rows };
    };

    it('invariant: a state change and its messages commit together', async () => {
      await withTransaction(pool, async (tx) => {
        await tx.query('INSERT INTO orders VALUES ($1)', ['o-1']);
        await messaging.publishEvents(tx, { type: 'Order', id: 'o-1' }, [
          event(OrderCreated, { orderId: 'o-1' }),
        ]);
      });
      expect(await rows('o-1')).toEqual({
        orders: 1,
        outbox: [{ channel: 'Order', partition_key: 'o-1', type: 'OrderCreated' }],
      });
    });

    it('invariant: a state change and its messages roll back together', async () => {
      await expect(
        withTransaction(pool, async (tx) => {
          await tx.query('INSERT INTO orders VALUES ($1)', ['o-2']);
          await messaging.publishEvents(tx, { type: 'Order', id: 'o-2' }, [
            event(OrderCreated, { orderId: 'o-2' }),
          ]);
          throw new Error('business rule failed after the send');
        }),
      ).rejects.toThrow('business rule failed');
      expect(await rows('o-2')).toEqual({ orders: 0, outbox: [] });
    });

    it('invariant: a message sent inside a rolled-back savepoint is rolled back with it', async () => {
      await withTransaction(pool, async (tx) => {
        await tx.query('SAVEPOINT attempt');
        await tx.query('INSERT INTO orders VALUES ($1)', ['o-sp']);
        await messaging.publishEvents(tx, { type: 'Order', id: 'o-sp' }, [
          event(OrderCreated, { orderId: 'o-sp' }),
        ]);
        await tx.query('ROLLBACK TO SAVEPOINT attempt');
      });
      expect(await rows('o-sp')).toEqual({ orders: 0, outbox: [] });
    });

    it('joins a Kysely transaction too', async () => {
      const kysely = new Kysely<{ orders: { id: string } }>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db().url }) }),
      });
      await kysely.transaction().execute(async (trx) => {
        await trx.insertInto('orders').values({ id: 'o-3' }).execute();
        await messaging.publishEvents(trx, { type: 'Order', id: 'o-3' }, [
          event(OrderCreated, { orderId: 'o-3' }),
        ]);
      });
      await expect(
        kysely.transaction().execute(async (trx) => {
          await trx.insertInto('orders').values({ id: 'o-4' }).execute();
          await messaging.publishEvents(trx, { type: 'Order', id: 'o-4' }, [
            event(OrderCreated, { orderId: 'o-4' }),
          ]);
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await kysely.destroy();
      expect((await rows('o-3')).outbox).toHaveLength(1);
      expect(await rows('o-4')).toEqual({ orders: 0, outbox: [] });
    });

    it('writes many messages in one round trip (one statement)', async () => {
      const client = await pool.connect();
      let statements = 0;
      const query = client.query.bind(client);
      // Count what reaches the server through this client while appending 50 messages.
      (client as unknown as { query: typeof query }).query = ((...args: Parameters<typeof query>) => {
        statements++;
        return query(...args);
      }) as typeof query;
      await client.query('BEGIN');
      statements = 0;
      await messaging.publishEvents(
        client,
        { type: 'Order', id: 'o-5' },
        Array.from({ length: 50 }, (_, i) => event(OrderCreated, { orderId: `o-5-${i}` })),
      );
      expect(statements).toBe(1);
      await client.query('COMMIT');
      client.release();
      expect((await rows('o-5')).outbox).toHaveLength(50);
    });

    it('in a transaction Ferry commits, sends the outbox insert with the COMMIT: no round trip of its own', async () => {
      const counted = countingPool(db().url);
      const counting = counted.pool;
      await withTransaction(counting, (tx) => tx.query('INSERT INTO orders VALUES ($1)', ['rt-1']));
      const without = counted.requests;
      counted.requests = 0;
      await withTransaction(counting, async (tx) => {
        await tx.query('INSERT INTO orders VALUES ($1)', ['rt-2']);
        await messaging.publishEvents(tx, { type: 'Order', id: 'rt-2' }, [
          event(OrderCreated, { orderId: 'rt-2' }),
          event(OrderCreated, { orderId: 'rt-2' }),
        ]);
      });
      const withOutbox = counted.requests;
      await counting.end();
      expect(without).toBe(2); // BEGIN with the INSERT, COMMIT
      expect(withOutbox).toBe(without);
      expect(await rows('rt-2')).toEqual({
        orders: 1,
        outbox: [
          { channel: 'Order', partition_key: 'rt-2', type: 'OrderCreated' },
          { channel: 'Order', partition_key: 'rt-2', type: 'OrderCreated' },
        ],
      });
    });

    it('writes a deferred insert before the next statement, so the transaction reads its own messages', async () => {
      const seen = await withTransaction(pool, async (tx) => {
        await messaging.publishEvents(tx, { type: 'Order', id: 'own-1' }, [
          event(OrderCreated, { orderId: 'own-1' }),
        ]);
        const { rows: found } = await tx.query(
          "SELECT count(*)::int AS n FROM ferry.outbox WHERE partition_key = 'own-1'",
        );
        return found[0].n as number;
      });
      expect(seen).toBe(1);
    });

    it('an insert written ahead of a statement, with its relay wake-up, leaves the statement its own rows', async () => {
      await pool.query(
        "UPDATE ferry.relay_state SET waiting_until = clock_timestamp() + interval '1 minute'",
      );
      try {
        const echoed = await withTransaction(pool, async (tx) => {
          await messaging.publishEvents(tx, { type: 'Order', id: 'ahead-1' }, [
            event(OrderCreated, { orderId: 'ahead-1' }),
          ]);
          const { rows: answer } = await tx.query('SELECT $1::text AS echo', ['mine']);
          return answer;
        });
        expect(echoed).toEqual([{ echo: 'mine' }]);
        expect((await rows('ahead-1')).outbox).toHaveLength(1);
      } finally {
        await pool.query('UPDATE ferry.relay_state SET waiting_until = NULL');
      }
    });

    it('runs statements of every kind after queued inserts without queueing them on a busy client', async () => {
      for (const [n, statement] of [
        "INSERT INTO orders VALUES ('kinds-1')",
        { text: 'INSERT INTO orders VALUES ($1)', values: ['kinds-2'] },
        { name: 'orders_insert', text: 'INSERT INTO orders VALUES ($1)', values: ['kinds-3'] },
      ].entries()) {
        await withTransaction(pool, async (tx) => {
          await messaging.publishEvents(tx, { type: 'Order', id: `kinds-${n + 1}` }, [
            event(OrderCreated, { orderId: `kinds-${n + 1}` }),
          ]);
          await tx.query(statement as pg.QueryConfig);
          await messaging.publishEvents(tx, { type: 'Order', id: `kinds-${n + 1}` }, [
            event(OrderCreated, { orderId: `kinds-${n + 1}` }),
          ]);
          await tx.query('SELECT 1');
        });
        expect(await rows(`kinds-${n + 1}`)).toMatchObject({ orders: 1, outbox: [{}, {}] });
      }
      expect(queuedWarnings).toEqual([]);
    });

    describe('when the outbox insert fails', () => {
      beforeAll(async () => {
        await pool.query(`
          CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF NEW.partition_key LIKE 'poison%' THEN RAISE EXCEPTION 'outbox refuses %', NEW.partition_key; END IF;
            RETURN NEW;
          END $$;
          CREATE TRIGGER refuse_poison BEFORE INSERT ON ferry.outbox FOR EACH ROW EXECUTE FUNCTION refuse_poison();`);
      });
      afterAll(async () => {
        await pool.query('DROP TRIGGER refuse_poison ON ferry.outbox; DROP FUNCTION refuse_poison()');
      });

      const poison = (tx: pg.PoolClient, id: string) =>
        messaging.publishEvents(tx, { type: 'Order', id }, [event(OrderCreated, { orderId: id })]);

      /** The transaction fails with the insert's own error, and nothing of it commits. */
      const refused = async (id: string, work: (tx: pg.PoolClient) => Promise<void>) => {
        await expect(withTransaction(pool, work)).rejects.toThrow(`outbox refuses ${id}`);
        expect(await rows(id)).toEqual({ orders: 0, outbox: [] });
      };

      it('the commit fails with its error, and the business change rolls back', async () => {
        await refused('poison-1', async (tx) => {
          await tx.query('INSERT INTO orders VALUES ($1)', ['poison-1']);
          await poison(tx, 'poison-1');
        });
      });

      it('the next statement fails with its error, not with "transaction is aborted"', async () => {
        await refused('poison-2', async (tx) => {
          await poison(tx, 'poison-2');
          await tx.query('INSERT INTO orders VALUES ($1)', ['poison-2']);
        });
      });

      it('a next statement without parameters (sent after the insert, not with it) fails with its error too', async () => {
        await refused('poison-4', async (tx) => {
          await poison(tx, 'poison-4');
          await tx.query("INSERT INTO orders VALUES ('poison-4')");
        });
      });

      it('a caller that catches the error cannot commit what it lost', async () => {
        await refused('poison-3', async (tx) => {
          await poison(tx, 'poison-3');
          await tx.query('INSERT INTO orders VALUES ($1)', ['poison-3']).catch(() => {});
        });
      });
    });

    it('reports a transaction that a caught error aborted as rolled back, not committed', async () => {
      await expect(
        withTransaction(pool, async (tx) => {
          await tx.query('INSERT INTO orders VALUES ($1)', ['caught-1']);
          await tx.query('SELECT 1 / 0').catch(() => {});
        }),
      ).rejects.toThrow(/rolled back/);
      expect(await rows('caught-1')).toEqual({ orders: 0, outbox: [] });
    });

    /** Counts the relay wake-ups (NOTIFY on the outbox channel) from now on. */
    const listenForWakeUps = async () => {
      const listener = new pg.Client({ connectionString: db().url });
      await listener.connect();
      let notifications = 0;
      listener.on('notification', () => notifications++);
      await listener.query('LISTEN ferry_outbox');
      return { count: () => notifications, end: () => listener.end() };
    };

    it('wakes a waiting relay with NOTIFY, and leaves a busy one alone (no commit-serialising NOTIFY)', async () => {
      const wakeUps = await listenForWakeUps();
      const send = (id: string) =>
        withTransaction(pool, (tx) =>
          messaging.publishEvents(tx, { type: 'Order', id }, [event(OrderCreated, { orderId: id })]),
        );
      // Every append checks here (the quiet window is the next test's).
      const wake = relayWakeStateOf(pool);
      wake.quietForMs = 0;
      try {
        await pool.query('UPDATE ferry.relay_state SET waiting_until = NULL');
        await send('busy-1');
        await pool.query(
          "UPDATE ferry.relay_state SET waiting_until = clock_timestamp() + interval '1 minute'",
        );
        await send('waiting-1');
        await new Promise((r) => setTimeout(r, 100));
        expect(wakeUps.count()).toBe(1);
      } finally {
        await wakeUps.end();
        await pool.query('UPDATE ferry.relay_state SET waiting_until = NULL');
        wake.quietForMs = 10;
      }
    });

    it('skips the wake-up check for the quiet window after a check found no relay waiting, and checks again after it', async () => {
      const wakeUps = await listenForWakeUps();
      const wake = relayWakeStateOf(pool);
      const forget = () => wake.observed(true, 0); // as after a check that found a relay waiting
      /** An order and its event: the append goes ahead of the COMMIT, in its request. */
      const placeOrder = (id: string) =>
        withTransaction(pool, async (tx) => {
          await tx.query('INSERT INTO orders VALUES ($1)', [id]);
          await messaging.publishEvents(tx, { type: 'Order', id }, [event(OrderCreated, { orderId: id })]);
        });
      // A window long enough that a slow machine's round trips stay inside it.
      wake.quietForMs = 60_000;
      try {
        await pool.query('UPDATE ferry.relay_state SET waiting_until = NULL');
        // Checked, through both ways an append leaves: alone, and ahead of the COMMIT.
        forget();
        await withTransaction(pool, (tx) =>
          messaging.publishEvents(tx, { type: 'Order', id: 'quiet-1' }, [
            event(OrderCreated, { orderId: 'quiet-1' }),
          ]),
        );
        expect(wake.quiet).toBe(true);
        forget();
        await placeOrder('quiet-2');
        expect(wake.quiet).toBe(true);

        // A relay announces that it waits: within the window, appends do not look (the relay's
        // second look finds their rows), and they are written all the same.
        await pool.query(
          "UPDATE ferry.relay_state SET waiting_until = clock_timestamp() + interval '1 minute'",
        );
        await placeOrder('quiet-3');
        await new Promise((r) => setTimeout(r, 100));
        expect(wakeUps.count()).toBe(0);
        expect(await rows('quiet-3')).toMatchObject({ orders: 1, outbox: [{ partition_key: 'quiet-3' }] });

        // Once the window has passed, the next append checks, wakes the relay and stops skipping.
        wake.quietForMs = 0;
        forget();
        await placeOrder('quiet-4');
        await new Promise((r) => setTimeout(r, 100));
        expect(wakeUps.count()).toBe(1);
        expect(wake.quiet).toBe(false);
      } finally {
        await wakeUps.end();
        await pool.query('UPDATE ferry.relay_state SET waiting_until = NULL');
        wake.quietForMs = 10;
      }
    });

    it('refuses the pool in place of a transaction', async () => {
      await expect(
        messaging.publishEvents(pool as never, { type: 'Order', id: 'x' }, [
          event(OrderCreated, { orderId: 'x' }),
        ]),
      ).rejects.toThrow(/not the pool/);
    });
  });
}
