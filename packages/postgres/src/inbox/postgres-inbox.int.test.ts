import { newMessageId } from '@ferry/core';
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
  });
}
