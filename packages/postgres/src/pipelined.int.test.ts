import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countingPool } from '../../../test/counting-pool.js';
import { postgresTargets, useTestDatabase } from '../../../test/pg-test-database.js';
import { withTransaction } from './database.js';
import { LeadingThen, thenCommit } from './leading-then.js';
import { submit } from './pipelined.js';

/*
 * withTransaction sends BEGIN with the work's first statement (one request) when that statement
 * has parameters, and on its own otherwise. Either way the work must see exactly what a plain
 * BEGIN; …; COMMIT would give it.
 */
for (const target of postgresTargets()) {
  describe(`transactions with BEGIN in the first request (${target.name} server)`, () => {
    const db = useTestDatabase(() => target.adminUrl, 'pipelined');
    let pool: pg.Pool;

    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: db().url, max: 2 });
      await pool.query(`CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL);
        CREATE TABLE deferred_items (id int UNIQUE DEFERRABLE INITIALLY DEFERRED, label text NOT NULL)`);
    });
    afterAll(() => pool.end());

    const count = async (id: number) =>
      (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM items WHERE id = $1', [id])).rows[0]!
        .n;

    it('runs the first statement inside the transaction, with its rows and types as query gives them', async () => {
      const result = await withTransaction(pool, async (tx) => {
        const first = await tx.query<{ n: number; started: Date }>(
          'SELECT $1::int + 1 AS n, now() AS started',
          [41],
        );
        const second = await tx.query<{ started: Date }>('SELECT now() AS started');
        return {
          n: first.rows[0]!.n,
          same: first.rows[0]!.started.getTime() === second.rows[0]!.started.getTime(),
        };
      });
      // now() is the transaction's start: equal only if both statements ran in one transaction.
      expect(result).toEqual({ n: 42, same: true });
    });

    it('rolls back the first statement with the rest when the work fails', async () => {
      await expect(
        withTransaction(pool, async (tx) => {
          await tx.query('INSERT INTO items VALUES ($1, $2)', [1, 'first']);
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await count(1)).toBe(0);
    });

    it('reports a failing first statement with its own error and leaves the connection usable', async () => {
      await pool.query("INSERT INTO items VALUES (2, 'taken')");
      for (let i = 0; i < 3; i++) {
        await expect(
          withTransaction(pool, (tx) => tx.query('INSERT INTO items VALUES ($1, $2)', [2, 'again'])),
        ).rejects.toMatchObject({ code: '23505' });
      }
      await withTransaction(pool, (tx) => tx.query('INSERT INTO items VALUES ($1, $2)', [3, 'after']));
      expect(await count(3)).toBe(1);
    });

    it('sends BEGIN on its own before a first statement without parameters, a named one, or several in one text', async () => {
      await withTransaction(pool, async (tx) => {
        await tx.query("INSERT INTO items VALUES (4, 'plain')");
        await tx.query({
          name: 'items_insert',
          text: 'INSERT INTO items VALUES ($1, $2)',
          values: [5, 'named'],
        });
      });
      await withTransaction(pool, (tx) =>
        tx.query("INSERT INTO items VALUES (6, 'a'); INSERT INTO items VALUES (7, 'b')"),
      );
      await expect(
        withTransaction(pool, async (tx) => {
          await tx.query({
            name: 'items_insert',
            text: 'INSERT INTO items VALUES ($1, $2)',
            values: [8, 'named'],
          });
          throw new Error('no');
        }),
      ).rejects.toThrow('no');
      expect([await count(4), await count(5), await count(6), await count(7), await count(8)]).toEqual([
        1, 1, 1, 1, 0,
      ]);
    });

    /** A client of its own (a connection of its own), ended after `work`. */
    const withClient = async (work: (client: pg.Client) => Promise<void>) => {
      const client = new pg.Client({ connectionString: db().url });
      await client.connect();
      try {
        await work(client);
      } finally {
        await client.end();
      }
    };
    /** BEGIN, then an insert of `id` into deferred_items and COMMIT in one request. */
    const insertThenCommit = async (client: pg.Client, id: number, label = 'x') => {
      await client.query('BEGIN');
      return submit(
        client,
        thenCommit({ text: 'INSERT INTO deferred_items VALUES ($1, $2)', values: [`${id}`, label] }),
      );
    };
    const preparedOf = async (client: pg.Client) =>
      (
        await client.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name')
      ).rows.map((r) => r.name);
    const idsBetween = async (from: number, to: number) =>
      (
        await pool.query<{ id: number }>(
          'SELECT id FROM deferred_items WHERE id BETWEEN $1 AND $2 ORDER BY id',
          [from, to],
        )
      ).rows.map((r) => r.id);

    it('prepares the COMMIT sent with a statement once per connection', async () => {
      await withClient(async (client) => {
        // The parses the server answered, counted where node-postgres reads them.
        let parses = 0;
        (client as unknown as { connection: pg.Connection }).connection.on('parseComplete', () => parses++);
        await insertThenCommit(client, 10);
        await insertThenCommit(client, 11);
        await insertThenCommit(client, 12);
        expect(await preparedOf(client)).toEqual(['ferry_commit']);
        // One Parse for each request's unnamed INSERT, one for COMMIT, in three requests.
        expect(parses).toBe(4);
        // The leading statements alone (no caller's statement) commit the same way.
        await client.query('BEGIN');
        await client.query('INSERT INTO deferred_items VALUES (13, $1)', ['w']);
        const done = await submit(
          client,
          new LeadingThen([{ name: 'ferry_commit', text: 'COMMIT', preparedPerConnection: true }]),
        );
        expect(done.command).toBe('COMMIT');
        expect(parses).toBe(5); // the INSERT's; COMMIT was prepared already
      });
      expect(await idsBetween(10, 19)).toEqual([10, 11, 12, 13]);
    });

    it('prepares the COMMIT again after a request that failed', async () => {
      // A COMMIT that fails (a deferred unique check) in a request that parsed it: unsure whether
      // its Parse ran, the next request closes it and parses it again rather than failing on a
      // duplicate statement name.
      await withClient(async (client) => {
        await client.query('BEGIN');
        await client.query('INSERT INTO deferred_items VALUES (20, $1)', ['first']);
        await expect(
          submit(
            client,
            thenCommit({ text: 'INSERT INTO deferred_items VALUES ($1, $2)', values: ['20', 'again'] }),
          ),
        ).rejects.toMatchObject({ code: '23505' });
        await insertThenCommit(client, 21);
      });
      // A request that fails before its COMMIT is parsed: the next one parses it.
      await withClient(async (client) => {
        await client.query('BEGIN');
        await expect(
          submit(client, thenCommit({ text: 'SELECT 1 / $1::int', values: ['0'] })),
        ).rejects.toMatchObject({ code: '22012' });
        await client.query('ROLLBACK');
        await insertThenCommit(client, 22);
      });
      expect(await idsBetween(20, 29)).toEqual([21, 22]);
    });

    it('prepares the COMMIT again after it was deallocated behind its back', async () => {
      // DEALLOCATE, DISCARD ALL: the commit that finds it gone fails (its work rolled back), and
      // the next one prepares it again rather than failing too.
      await withClient(async (client) => {
        await insertThenCommit(client, 39);
        await client.query('DEALLOCATE ferry_commit');
        await expect(insertThenCommit(client, 40)).rejects.toMatchObject({ code: '26000' });
        await client.query('ROLLBACK');
        await insertThenCommit(client, 41);
        await insertThenCommit(client, 42);
        expect(await preparedOf(client)).toEqual(['ferry_commit']);
      });
      expect(await idsBetween(39, 49)).toEqual([39, 41, 42]);
    });

    it('sends nothing for a transaction that runs no statement', async () => {
      const counted = countingPool(db().url);
      expect(await withTransaction(counted.pool, async () => 'nothing to do')).toBe('nothing to do');
      await counted.pool.end();
      expect(counted.requests).toBe(0);
    });
  });
}
