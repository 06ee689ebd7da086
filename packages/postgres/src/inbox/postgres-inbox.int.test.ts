import { newMessageId } from '@ferry/core';
import { waitFor } from '@ferry/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countingPool } from '../../../../test/counting-pool.js';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { messagingMigrations } from '../migrations/messaging.migrations.js';
import { migrate } from '../migrations/migrate.js';
import { appendWire } from '../outbox/postgres-outbox.js';
import { PostgresInbox } from './postgres-inbox.js';

for (const target of postgresTargets()) {
  describe(`PostgreSQL inbox (${target.name} server)`, () => {
    const db = useTestDatabase(() => target.adminUrl, 'inbox');
    let pool: pg.Pool;
    let inbox: PostgresInbox;
    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: db().url, max: 6 });
      await migrate(pool, 'ferry-messaging', messagingMigrations);
      await pool.query('CREATE TABLE effects (group_name text, message_id uuid)');
      inbox = new PostgresInbox(pool);
    });
    afterAll(() => pool.end());

    const effects = async (id: string) =>
      Number((await pool.query('SELECT count(*) AS n FROM effects WHERE message_id = $1', [id])).rows[0].n);
    const handle = (group: string, id: string, fail = false) =>
      inbox.handle(group, id, async (tx) => {
        await tx.query('INSERT INTO effects VALUES ($1, $2)', [group, id]);
        if (fail) throw new Error('handler failed');
      });

    it('invariant: a message has its effect once per group, however often it is delivered', async () => {
      const id = newMessageId();
      expect(await handle('kitchen', id)).toBe('handled');
      expect(await handle('kitchen', id)).toBe('duplicate');
      expect(await handle('kitchen', id)).toBe('duplicate');
      expect(await handle('accounting', id)).toBe('handled');
      expect(await effects(id)).toBe(2);
    });

    it('records nothing when the handler fails, so a redelivery runs it again', async () => {
      const id = newMessageId();
      await expect(handle('kitchen', id, true)).rejects.toThrow('handler failed');
      expect(await effects(id)).toBe(0);
      expect(await handle('kitchen', id)).toBe('handled');
      expect(await effects(id)).toBe(1);
    });

    it('lets only one of two concurrent deliveries of a message take effect', async () => {
      const id = newMessageId();
      const results = await Promise.all(Array.from({ length: 5 }, () => handle('kitchen', id)));
      expect(results.filter((r) => r === 'handled')).toHaveLength(1);
      expect(await effects(id)).toBe(1);
    });

    it('refuses an id that is not a UUID', async () => {
      await expect(handle('kitchen', "x'); DROP TABLE effects; --")).rejects.toThrow(/not a UUID/);
    });

    it('escapes the group name', async () => {
      const id = newMessageId();
      expect(await handle("o'brien", id)).toBe('handled');
      expect(await handle("o'brien", id)).toBe('duplicate');
    });

    it('runs none of a duplicate’s work', async () => {
      const id = newMessageId();
      expect(await handle('kitchen', id)).toBe('handled');
      const reached: string[] = [];
      const result = await inbox.handle('kitchen', id, async (tx) => {
        reached.push('start');
        await tx.query('INSERT INTO effects VALUES ($1, $2)', ['kitchen', id]);
        reached.push('after first statement');
        await tx.query('INSERT INTO effects VALUES ($1, $2)', ['kitchen', id]);
      });
      expect(result).toBe('duplicate');
      expect(reached).toEqual([]);
      expect(await effects(id)).toBe(1);
    });

    it('detects a duplicate whose work sends messages and runs no statement: nothing is sent again', async () => {
      const id = newMessageId();
      const send = (tx: pg.PoolClient) =>
        appendWire(tx, [
          {
            id: newMessageId(),
            channel: 'replies',
            partitionKey: id,
            headers: { kind: 'event', type: 'Seen', createdAt: 'now' },
            body: '{}',
          },
        ]);
      const outboxRows = async () =>
        Number(
          (await pool.query('SELECT count(*) AS n FROM ferry.outbox WHERE partition_key = $1', [id])).rows[0]
            .n,
        );
      expect(await inbox.handle('kitchen', id, send)).toBe('handled');
      expect(await inbox.handle('kitchen', id, send)).toBe('duplicate');
      expect(await outboxRows()).toBe(1);
    });

    it('detects a duplicate whatever the work’s first statement is', async () => {
      const id = newMessageId();
      const literal = async (tx: pg.PoolClient) => {
        await tx.query(`INSERT INTO effects VALUES ('kitchen', '${id}')`);
      };
      expect(await inbox.handle('kitchen', id, literal)).toBe('handled');
      expect(await inbox.handle('kitchen', id, literal)).toBe('duplicate');
      expect(await effects(id)).toBe(1);
    });

    it('costs a message one request of its own: BEGIN with the inbox insert; the appends go with COMMIT', async () => {
      const counted = countingPool(db().url);
      try {
        const counting = new PostgresInbox(counted.pool);
        const id = newMessageId();
        await counting.handle('kitchen', id, async (tx) => {
          await tx.query('INSERT INTO effects VALUES ($1, $2)', ['kitchen', id]);
          await appendWire(tx, [
            {
              id: newMessageId(),
              channel: 'replies',
              partitionKey: id,
              headers: { kind: 'event', type: 'Seen', createdAt: 'now' },
              body: '{}',
            },
          ]);
        });
        expect(counted.requests).toBe(3); // BEGIN and the insert; the statement; the appends and COMMIT
      } finally {
        await counted.pool.end();
      }
    });

    describe('group commit', () => {
      /** A promise and the function that settles it. */
      const gate = () => {
        let open!: () => void;
        const opened = new Promise<void>((resolve) => {
          open = resolve;
        });
        return { open, opened };
      };
      const txid = async (tx: pg.PoolClient) =>
        String((await tx.query('SELECT txid_current() AS id')).rows[0].id);
      const insertEffect = (tx: pg.PoolClient, id: string) =>
        tx.query('INSERT INTO effects VALUES ($1, $2)', ['kitchen', id]);
      /**
       * `count` messages offered at once, the first held in its handler until `release`, so that
       * the others wait for a transaction together.
       */
      const heldBatch = (
        batching: PostgresInbox,
        count: number,
        work: (tx: pg.PoolClient, id: string, i: number) => Promise<unknown>,
      ) => {
        const first = gate();
        const ids = Array.from({ length: count }, () => newMessageId());
        const results = ids.map((id, i) =>
          batching.handle('kitchen', id, async (tx) => {
            if (i === 0) await first.opened;
            await work(tx, id, i);
          }),
        );
        return { ids, results, release: first.open };
      };

      it('handles the messages that waited for a transaction together, in one', async () => {
        const batching = new PostgresInbox(pool, { transactions: 1 });
        const seen = new Map<string, string>();
        const { ids, results, release } = heldBatch(batching, 5, async (tx, id) => {
          seen.set(id, await txid(tx));
          await insertEffect(tx, id);
        });
        release();
        expect(await Promise.all(results)).toEqual(ids.map(() => 'handled'));
        const waited = new Set(ids.slice(1).map((id) => seen.get(id)));
        expect(waited.size).toBe(1);
        expect(waited.has(seen.get(ids[0]!))).toBe(false);
        for (const id of ids) expect(await effects(id)).toBe(1);
      });

      it('costs a batch of n messages n + 2 requests: the inbox rows with BEGIN, each statement, COMMIT', async () => {
        const counted = countingPool(db().url);
        try {
          // No second transaction while the first is held (that is the slow-handler tests' subject),
          // and batches not sized down by the held handler's time.
          const batching = new PostgresInbox(counted.pool, { transactions: 1, slowHandlerMs: 60_000 });
          const { results, release } = heldBatch(batching, 5, insertEffect);
          // A new connection may take a while (SCRAM); then nothing else is sent while the first is held.
          await waitFor(() => counted.requests >= 1, "the first message's transaction to begin");
          await new Promise((resolve) => setTimeout(resolve, 20));
          const alone = counted.requests; // the first message's: BEGIN with its inbox row
          release();
          await Promise.all(results);
          expect(alone).toBe(1);
          expect(counted.requests).toBe(3 + (4 + 2));
        } finally {
          await counted.pool.end();
        }
      });

      it('fails only the message whose handler threw; the rest of its batch commits', async () => {
        const batching = new PostgresInbox(pool, { transactions: 1 });
        const runs = new Map<string, number>();
        const { ids, results, release } = heldBatch(batching, 4, async (tx, id, i) => {
          runs.set(id, (runs.get(id) ?? 0) + 1);
          await insertEffect(tx, id);
          if (i === 2) throw new Error('handler failed');
        });
        release();
        const settled = await Promise.allSettled(results);
        expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
        expect((settled[2] as PromiseRejectedResult).reason).toEqual(new Error('handler failed'));
        expect(await Promise.all(ids.map(effects))).toEqual([1, 1, 0, 1]);
        // The message before the failure ran again after the rollback; the one after it, once.
        expect(runs.get(ids[1]!)).toBe(2);
        expect(runs.get(ids[3]!)).toBe(1);
        // The failed message is not recorded: a redelivery handles it.
        expect(await handle('kitchen', ids[2]!)).toBe('handled');
      });

      it('fails only the message at fault when COMMIT rolls back (a handler swallowed a failed statement)', async () => {
        const batching = new PostgresInbox(pool, { transactions: 1 });
        const { ids, results, release } = heldBatch(batching, 4, async (tx, id, i) => {
          await insertEffect(tx, id);
          if (i === 2) await tx.query('SELECT 1 / 0').catch(() => undefined);
        });
        release();
        const settled = await Promise.allSettled(results);
        expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
        expect(String((settled[2] as PromiseRejectedResult).reason)).toMatch(/rolled back/);
        expect(await Promise.all(ids.map(effects))).toEqual([1, 1, 0, 1]);
      });

      it('opens another transaction when a handler is slow, so that it holds back no other key', async () => {
        const batching = new PostgresInbox(pool, { transactions: 1, slowHandlerMs: 20 });
        const slow = gate();
        const slowId = newMessageId();
        const slowResult = batching.handle('kitchen', slowId, async (tx) => {
          await tx.query('INSERT INTO effects VALUES ($1, $2)', ['kitchen', slowId]);
          await slow.opened;
        });
        const quickIds = Array.from({ length: 3 }, () => newMessageId());
        const quick = quickIds.map((id) => handle('kitchen', id));
        const inner = quickIds.map((id) =>
          batching.handle('accounting', id, async (tx) => {
            await tx.query('INSERT INTO effects VALUES ($1, $2)', ['accounting', id]);
          }),
        );
        // All handled while the slow handler still waits.
        expect(await Promise.all(inner)).toEqual(['handled', 'handled', 'handled']);
        await Promise.all(quick);
        slow.open();
        expect(await slowResult).toBe('handled');
        expect(await effects(slowId)).toBe(1);
      });

      it('spreads handlers of a few milliseconds each over transactions of about slowHandlerMs, not 32 in one', async () => {
        const batching = new PostgresInbox(pool, { transactions: 1, slowHandlerMs: 10 });
        const txids = new Set<string>();
        const handleSlowly = (id: string) =>
          batching.handle('kitchen', id, async (tx) => {
            txids.add(await txid(tx));
            await new Promise((resolve) => setTimeout(resolve, 4));
          });
        // A first round teaches the inbox how long a handler takes (its moving average settles
        // within it); the second is measured. (That a slow transaction lets another open is the
        // test above's subject: here, on a slow machine, batches of one never become slow.)
        await Promise.all(Array.from({ length: 24 }, () => handleSlowly(newMessageId())));
        txids.clear();
        const results = await Promise.all(Array.from({ length: 24 }, () => handleSlowly(newMessageId())));
        expect(results.every((r) => r === 'handled')).toBe(true);
        // Batches of about 10 ms of handlers: two of 4 ms or more each.
        expect(txids.size).toBeGreaterThanOrEqual(10);
      });

      it('rejects bad settings, naming them', () => {
        expect(() => new PostgresInbox(pool, { maxBatchSize: 0 })).toThrow(/maxBatchSize/);
        expect(() => new PostgresInbox(pool, { transactions: 1.5 })).toThrow(/transactions/);
      });
    });
  });
}
