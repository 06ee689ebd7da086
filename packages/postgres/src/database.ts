import pg from 'pg';
import { deferringTransaction } from './outbox/deferred-appends.js';
import { relayWakeStateOf } from './outbox/relay-wake-state.js';

/** A node-postgres client or pool: anything that runs a query. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** Creates the database `name` on the server at `adminUrl` unless it exists (safe under races). */
export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name))
    throw new Error(`database name must be lower-case snake_case, got "${name}"`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE ${name}`).catch((error: { code?: string }) => {
        // 42P04 duplicate_database, 23505 unique_violation: another process created it first.
        if (error.code !== '42P04' && error.code !== '23505') throw error;
      });
    }
  } finally {
    await client.end();
  }
}

const guarded = new WeakSet<pg.ClientBase>();
const ignore = () => {};

/**
 * Takes a client from the pool with an `error` listener on it. node-postgres emits a checked-out
 * client's connection errors (the server restarting, a cut connection) as an `error` event,
 * which without a listener crashes the process; with one, the error surfaces where it belongs:
 * as the rejection of the query in flight or the next one.
 */
export async function checkout(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect();
  if (!guarded.has(client)) {
    client.on('error', ignore);
    guarded.add(client);
  }
  return client;
}

/**
 * Runs `work` on a client from `pool`; `work` opens and commits its transaction itself. If it
 * throws, the transaction is rolled back, and a client that cannot even do that is discarded
 * rather than returned to the pool.
 */
export async function withRollback<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await checkout(pool);
  let broken = false;
  try {
    return await work(client);
  } catch (error) {
    broken = !(await tryRollback(client));
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Rolls back; false if the connection cannot even do that (release it as broken then). */
export async function tryRollback(client: pg.ClientBase): Promise<boolean> {
  try {
    await client.query('ROLLBACK');
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `work` in a transaction on a client from `pool`: commit on success, rollback on error.
 * BEGIN goes with the first statement the work sends.
 * @example
 * await withTransaction(pool, async (tx) => { await tx.query('UPDATE ...'); await outbox.append(tx, messages); });
 */
export function withTransaction<T>(pool: pg.Pool, work: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  return withRollback(pool, async (client) => {
    const transaction = deferringTransaction(client, { begun: false, wake: relayWakeStateOf(pool) });
    const result = await work(transaction.tx);
    await transaction.commit();
    return result;
  });
}
