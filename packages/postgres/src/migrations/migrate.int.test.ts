import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { type Migration, migrate } from './migrate.js';

const migrations: Migration[] = [
  { version: 1, name: 'create', sql: 'CREATE TABLE things (id int PRIMARY KEY)' },
  { version: 2, name: 'seed', sql: 'INSERT INTO things VALUES (1), (2)' },
];

for (const target of postgresTargets()) {
  describe(`migrations (${target.name} server)`, () => {
    const db = useTestDatabase(() => target.adminUrl, 'migrate');
    let pools: pg.Pool[];
    beforeAll(() => {
      pools = [1, 2, 3].map(() => new pg.Pool({ connectionString: db().url, max: 2 }));
    });
    afterAll(() => Promise.all(pools.map((p) => p.end())));

    it('applies each migration once when three instances start at the same moment', async () => {
      const applied = await Promise.all(pools.map((pool) => migrate(pool, 'things', migrations)));
      expect(applied.flat()).toEqual(['things/1-create', 'things/2-seed']);
      const { rows } = await pools[0]!.query('SELECT count(*)::int AS n FROM things');
      expect(rows[0].n).toBe(2);
    });

    it('applies only what is new, and names the migration that fails', async () => {
      expect(await migrate(pools[0]!, 'things', migrations)).toEqual([]);
      const bad = [...migrations, { version: 3, name: 'broken', sql: 'ALTER TABLE nowhere ADD x int' }];
      await expect(migrate(pools[1]!, 'things', bad)).rejects.toThrow(
        /migration things\/3-broken failed: relation "nowhere" does not exist/,
      );
      const { rows } = await pools[0]!.query(
        "SELECT max(version) AS v FROM ferry.migrations WHERE set_name = 'things'",
      );
      expect(rows[0].v).toBe(2);
    });
  });
}
