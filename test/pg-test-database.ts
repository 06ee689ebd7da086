import { databaseUrl, ensureDatabase } from '@ferry/postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';

/** The PostgreSQL servers integration tests run against: the embedded one, and the machine's when reachable. */
export function postgresTargets(): Array<{ name: string; adminUrl: string }> {
  const targets = [{ name: 'embedded', adminUrl: inject('embeddedPostgresUrl') }];
  const server = inject('servers').postgres;
  if (server) targets.push({ name: 'server', adminUrl: server });
  return targets;
}

let counter = 0;

/**
 * A fresh database for the calling test file, created in `beforeAll` and dropped in `afterAll`
 * unless a test failed: a failed test's data stays for inspection (names start `ferry_t_`).
 * Returns a getter, since the database exists only once the hook ran.
 */
export function useTestDatabase(
  adminUrl: () => string | undefined,
  label = 'db',
): () => { url: string; name: string } {
  let current: { url: string; name: string } | undefined;
  let failed = false;
  beforeAll(async () => {
    const admin = adminUrl();
    if (!admin) return;
    counter++;
    const name = `ferry_t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${process.pid}_${counter}_${Date.now().toString(36)}`;
    await ensureDatabase(admin, name);
    current = { url: databaseUrl(admin, name), name };
  });
  afterEach((context) => {
    if (context.task.result?.state === 'fail') failed = true;
  });
  afterAll(async () => {
    const admin = adminUrl();
    if (!admin || !current || failed) {
      if (failed && current)
        console.log(`[ferry] kept database ${current.name} of a failed test for inspection`);
      return;
    }
    await dropDatabase(admin, current.name);
  });
  return () => {
    if (!current) throw new Error('test database not created: is the server reachable?');
    return current;
  };
}

/**
 * Drops a database, disconnecting its sessions first. Sessions still closing get up to 2 s to go:
 * node-postgres' `pool.end()` resolves before its connections have closed, and a session the
 * drop terminates then reaches its pool as an error event nobody listens to any more.
 */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (let waited = 0; waited < 2000; waited += 20) {
      const { rows } = await client.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
        [name],
      );
      if (rows[0]!.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
