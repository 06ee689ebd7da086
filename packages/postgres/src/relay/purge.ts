import type pg from 'pg';
import { checkout } from '../database.js';

/** Rows one purge statement deletes at most. */
export const PURGE_BATCH = 10_000;

/**
 * Runs `purge` under the session advisory lock `lock`, so that one relay purges at a time;
 * resolves to what it returns, or to 0 if another relay holds the lock.
 */
export async function withPurgeLock(
  pool: pg.Pool,
  lock: number,
  purge: (client: pg.PoolClient) => Promise<number>,
): Promise<number> {
  const client = await checkout(pool);
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
      lock,
    ]);
    if (!rows[0]?.locked) return 0;
    try {
      return await purge(client);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [lock]);
    }
  } finally {
    client.release();
  }
}

/**
 * Runs `deleteStatement` (which deletes at most {@link PURGE_BATCH} rows) until it deletes fewer,
 * so that no single statement holds locks on a huge backlog; resolves to the rows deleted.
 */
export async function deleteInBatches(
  client: pg.PoolClient,
  deleteStatement: string,
  values: readonly unknown[],
): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await client.query(deleteStatement, [...values]);
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < PURGE_BATCH) return total;
  }
}

/**
 * Deletes outbox rows a polling relay marked published more than `retentionMs` ago, found through
 * the `outbox_published` index and deleted by `ctid` (the outbox has no primary key); resolves to
 * the rows deleted.
 */
export function purgePublished(client: pg.PoolClient, retentionMs: number): Promise<number> {
  return deleteInBatches(
    client,
    `DELETE FROM ferry.outbox WHERE ctid = ANY(ARRAY(
       SELECT ctid FROM ferry.outbox
        WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => $1::float8 / 1000)
        LIMIT ${PURGE_BATCH}))`,
    [retentionMs],
  );
}
