import { newMessageId } from '@ferry/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { messagingMigrations } from '../migrations/messaging.migrations.js';
import { migrate } from '../migrations/migrate.js';
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
  });
}
