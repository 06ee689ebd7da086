import type pg from 'pg';
import { checkout } from '../database.js';

/** One schema change; applied once, in order of `version`, inside a transaction. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Applies a named set of migrations that are not applied yet. A session-level advisory lock
 * makes it safe when several instances start at once: the others wait, then find nothing to do.
 * Each migration runs in its own transaction with its bookkeeping row.
 */
export async function migrate(
  pool: pg.Pool,
  set: string,
  migrations: readonly Migration[],
): Promise<string[]> {
  const client = await checkout(pool);
  const applied: string[] = [];
  try {
    await client.query("SELECT pg_advisory_lock(hashtext('ferry.migrations'), hashtext($1))", [set]);
    await client
      .query(`CREATE SCHEMA IF NOT EXISTS ferry;
      CREATE TABLE IF NOT EXISTS ferry.migrations (
        set_name text NOT NULL, version int NOT NULL, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (set_name, version))`)
      .catch((error: { code?: string }) => {
        // Two different sets racing to create the bookkeeping table: the loser finds it made.
        if (error.code !== '23505' && error.code !== '42P07') throw error;
      });
    const { rows } = await client.query<{ version: number }>(
      'SELECT version FROM ferry.migrations WHERE set_name = $1',
      [set],
    );
    const done = new Set(rows.map((r) => r.version));
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO ferry.migrations (set_name, version, name) VALUES ($1, $2, $3)', [
          set,
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
        applied.push(`${set}/${migration.version}-${migration.name}`);
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(
          `migration ${set}/${migration.version}-${migration.name} failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    }
  } finally {
    await client
      .query("SELECT pg_advisory_unlock(hashtext('ferry.migrations'), hashtext($1))", [set])
      .catch(() => {});
    client.release();
  }
  return applied;
}
