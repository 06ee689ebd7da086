import { type DatabaseServer, databaseUrl, ensureDatabase } from '@ferry/postgres';
import pg from 'pg';

/** Random lower-case suffix that names this run's databases, namespaces and queues. */
export const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/**
 * Fresh databases for one bench run, named `ferry_bench_<run>_<role>`, so that runs that
 * overlap on the shared server never touch each other's data. `dropAll` removes them at the end.
 */
export class BenchDatabases {
  readonly #created: string[] = [];

  constructor(readonly server: DatabaseServer) {}

  /** Creates an empty database for `role` and returns its URL. */
  async fresh(role: string): Promise<string> {
    const name = `ferry_bench_${runId}_${role}`;
    await ensureDatabase(this.server.adminUrl, name);
    this.#created.push(name);
    return databaseUrl(this.server.adminUrl, name);
  }

  /**
   * Drops every database this run created, with the replication slots a tailing relay left on
   * them (a database with a slot cannot be dropped); open connections are terminated.
   */
  async dropAll(): Promise<void> {
    // One connection per database: the drops (each a checkpoint's worth of work) overlap.
    await Promise.all(this.#created.splice(0).map((name) => this.#drop(name)));
  }

  async #drop(name: string): Promise<void> {
    const admin = new pg.Client({ connectionString: this.server.adminUrl });
    await admin.connect();
    try {
      await admin.query(
        'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL',
        [name],
      );
      await admin.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1',
        [name],
      );
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
}

/**
 * Empties a service database that an earlier phase of the run used (its messaging tables are
 * migrated): outbox, inbox and dead letters, and the bench's own tables, so that the next phase
 * starts as on a fresh database without paying for another CREATE DATABASE.
 */
export async function resetServiceDatabase(pool: pg.Pool): Promise<void> {
  await pool.query(`TRUNCATE ferry.outbox, ferry.inbox, ferry.dead_letters;
    UPDATE ferry.relay_state SET waiting_until = NULL;
    DROP TABLE IF EXISTS orders, seen`);
}
