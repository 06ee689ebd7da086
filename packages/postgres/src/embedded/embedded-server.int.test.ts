import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, stopEmbeddedPostgres } from './embedded-server.js';

describe('embedded PostgreSQL', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) {
      await stopEmbeddedPostgres(join(dir, 'pg'));
      await rm(dir, { recursive: true, force: true });
    }
  });

  const query = async (url: string, sql: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  };

  it('initialises a data directory with logical replication, keeps data across restarts on the same port, and is reused while running', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-embedded-'));
    await chmod(dir, 0o755); // mkdtemp makes it 0700; the server may run as another user
    const dataDir = join(dir, 'pg');
    const first = await startEmbeddedPostgres({ dataDir });
    expect(first.reused).toBe(false);
    expect(await query(first.url, "SELECT current_setting('wal_level') AS w")).toEqual([{ w: 'logical' }]);
    // Through the Unix socket (no server address on the connection), and on 127.0.0.1 too.
    expect(new URL(first.url).searchParams.get('host')).toMatch(/ferry-pg-/);
    expect(await query(first.url, 'SELECT inet_server_addr() IS NULL AS local')).toEqual([{ local: true }]);
    const tcp = new URL(first.url);
    tcp.search = '';
    expect(await query(tcp.toString(), 'SELECT inet_server_addr()::text AS a')).toEqual([
      { a: '127.0.0.1/32' },
    ]);
    await query(first.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");

    const again = await startEmbeddedPostgres({ dataDir });
    expect(again.reused).toBe(true);
    expect(again.port).toBe(first.port);
    expect(again.url).toBe(first.url);

    await first.stop();
    const restarted = await startEmbeddedPostgres({ dataDir });
    expect(restarted.reused).toBe(false);
    expect(restarted.port).toBe(first.port);
    expect(restarted.url).toBe(first.url);
    expect(await query(restarted.url, 'SELECT v FROM kept')).toEqual([{ v: 'still here' }]);
    await restarted.stop();
  });

  it('leaves the exit code of a process that used it alone (a failing test run must not exit 0), and stops its server on exit', async () => {
    const base = await mkdtemp(join(tmpdir(), 'ferry-exitcode-'));
    await chmod(base, 0o755);
    const dataDir = join(base, 'pg');
    // The scripts live in the repository so that they resolve @ferry/postgres.
    await mkdir('.ferry', { recursive: true });
    const run = async (name: string, body: string) => {
      const script = resolve('.ferry', `${name}-${process.pid}.ts`);
      await writeFile(script, `import { startEmbeddedPostgres } from '@ferry/postgres';\n${body}`);
      try {
        return await new Promise<number | null>((done) => {
          const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: 'ignore' });
          child.once('exit', done);
        });
      } finally {
        await rm(script, { force: true });
      }
    };
    try {
      // Ends naturally with a failure code after stopping its server: the code must survive.
      expect(
        await run(
          'exit-code',
          `const s = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} }); await s.stop(); process.exitCode = 3;`,
        ),
      ).toBe(3);
      // Exits without stopping its server: the exit handler gives the server a fast shutdown.
      expect(
        await run(
          'exit-stop',
          `await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} }); process.exit(4);`,
        ),
      ).toBe(4);
      const pidFile = join(dataDir, 'postmaster.pid');
      for (let waited = 0; existsSync(pidFile) && waited < 15_000; waited += 100)
        await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      await stopEmbeddedPostgres(dataDir);
      await rm(base, { recursive: true, force: true });
    }
  });

  it.runIf(process.getuid?.() === 0)(
    'as root, names a data directory the postgres user cannot reach',
    async () => {
      const closed = await mkdtemp(join(tmpdir(), 'ferry-closed-'));
      try {
        await expect(startEmbeddedPostgres({ dataDir: join(closed, 'pg') })).rejects.toThrow(
          new RegExp(`cannot enter ${closed}; allow it \\(chmod o\\+x`),
        );
      } finally {
        await rm(closed, { recursive: true, force: true });
      }
    },
  );
});
