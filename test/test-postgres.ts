import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { startEmbeddedPostgres } from '@ferry/postgres';

const USERS = resolve('.ferry/test-postgres.users');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts (or reuses) the embedded PostgreSQL server that test runs share, under
 * `.ferry/test-postgres`. Runs that overlap (two terminals, an editor's runner) register in
 * `.ferry/test-postgres.users`; the server stops when the last live run ends.
 */
export async function startTestPostgres() {
  const server = await startEmbeddedPostgres({ dataDir: '.ferry/test-postgres' });
  await mkdir(USERS, { recursive: true });
  const me = resolve(USERS, String(process.pid));
  await writeFile(me, '');
  return {
    url: server.url,
    stop: async () => {
      await rm(me, { force: true });
      const others = existsSync(USERS)
        ? (await readdir(USERS)).map(Number).filter((pid) => pid !== process.pid && alive(pid))
        : [];
      if (others.length > 0) return;
      if (server.reused) {
        // Started by a run that has ended: stop it through a fresh handle on the same directory.
        const { stopEmbeddedPostgres } = await import('@ferry/postgres');
        await stopEmbeddedPostgres('.ferry/test-postgres');
      } else await server.stop();
    },
  };
}
