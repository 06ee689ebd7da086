import type pg from 'pg';

/**
 * The error the tailing relay refuses to start with when the server cannot decode its WAL,
 * or `undefined` when `walLevel` is `logical`.
 */
export function walLevelError(walLevel: string): Error | undefined {
  if (walLevel === 'logical') return undefined;
  return new Error(
    `wal_level is "${walLevel}"; the tailing relay needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart)`,
  );
}

/** Throws {@link walLevelError} unless the server's `wal_level` is `logical`. */
export async function assertLogicalWal(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ wal_level: string }>('SHOW wal_level');
  const error = walLevelError(rows[0]?.wal_level ?? 'unknown');
  if (error) throw error;
}

/** 32-bit FNV-1a, for a short stable suffix. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/**
 * The default slot name of a service database: `ferry_outbox_<database>`, folded to the
 * characters slot names allow (lower-case letters, digits, `_`) and, past PostgreSQL's 63
 * characters, shortened with a hash of the full name so that names stay distinct.
 */
export function defaultSlotName(database: string): string {
  const name = `ferry_outbox_${database.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  return name.length <= 63 ? name : `${name.slice(0, 54)}_${fnv1a(name)}`;
}

/** Throws unless `name` is a valid replication slot name. */
export function assertSlotName(name: string): void {
  if (!/^[a-z0-9_]{1,63}$/.test(name))
    throw new Error(`slotName "${name}" is invalid: use 1 to 63 lower-case letters, digits or _`);
}

/** The table the relay tails. */
export interface OutboxTable {
  readonly schema: string;
  readonly name: string;
}

/** PostgreSQL's duplicate_object and unique_violation: another process created it first. */
function createdConcurrently(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === '42710' || code === '23505';
}

/**
 * Creates the insert-only publication of the outbox unless it exists, and checks that an
 * existing one publishes the outbox's inserts. Created at start-up (not by a migration) so that
 * services on the polling relay need no publication.
 */
export async function ensurePublication(
  pool: pg.Pool,
  publication: string,
  table: OutboxTable,
): Promise<void> {
  const check = () =>
    pool.query<{ inserts: boolean; has_table: boolean }>(
      `SELECT p.pubinsert AS inserts,
              EXISTS (SELECT 1 FROM pg_publication_tables t
                       WHERE t.pubname = p.pubname AND t.schemaname = $2 AND t.tablename = $3) AS has_table
         FROM pg_publication p WHERE p.pubname = $1`,
      [publication, table.schema, table.name],
    );
  let { rows } = await check();
  if (rows.length === 0) {
    const id = (s: string) => `"${s.replace(/"/g, '""')}"`;
    await pool
      .query(
        `CREATE PUBLICATION ${id(publication)} FOR TABLE ${id(table.schema)}.${id(table.name)} WITH (publish = 'insert')`,
      )
      .catch((error: unknown) => {
        if (!createdConcurrently(error)) throw error;
      });
    ({ rows } = await check());
  }
  const found = rows[0];
  if (!found?.inserts || !found.has_table)
    throw new Error(
      `publication "${publication}" exists but does not publish inserts into ${table.schema}.${table.name}; drop it or set publicationName`,
    );
}

/** What the server knows of a slot. */
export interface SlotState {
  readonly database: string;
  readonly plugin: string;
  readonly activePid: number | null;
  readonly confirmedFlushLsn: string | null;
}

/** The slot named `slot`, if it exists. */
export async function readSlot(pool: pg.Pool, slot: string): Promise<SlotState | undefined> {
  const { rows } = await pool.query<SlotState>(
    `SELECT database, plugin, active_pid AS "activePid", confirmed_flush_lsn::text AS "confirmedFlushLsn"
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return rows[0];
}

/** Bytes of WAL the slot holds back: `pg_current_wal_lsn() - confirmed_flush_lsn` (0 without the slot). */
export async function slotLagBytes(pool: pg.Pool, slot: string): Promise<number> {
  const { rows } = await pool.query<{ bytes: string | null }>(
    `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS bytes
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return Math.max(0, Number(rows[0]?.bytes ?? 0));
}

/**
 * Drops a replication slot, ending the session that streams from it if it stays active
 * past `graceMs`. A dropped slot no longer holds WAL back; a relay started later creates it
 * anew (re-sending the outbox rows still unpublished by the polling relay's reckoning, see
 * the pattern page). Resolves to whether a slot was dropped.
 */
export async function dropReplicationSlot(pool: pg.Pool, slot: string, graceMs = 5000): Promise<boolean> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const state = await readSlot(pool, slot);
    if (!state) return false;
    if (state.activePid !== null && Date.now() >= deadline)
      await pool.query('SELECT pg_terminate_backend($1)', [state.activePid]);
    if (state.activePid === null) {
      try {
        await pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
        return true;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === '42704') return false; // dropped meanwhile
        if (code !== '55006') throw error; // 55006: became active again; look once more
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
