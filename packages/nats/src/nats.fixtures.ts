import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/**
 * Test helpers for the NATS adapter's integration tests: a namespace per test file, its removal
 * from the shared server, and a private `nats-server` process that a test may kill and restart.
 */

/** A namespace no other test run uses. */
export function uniqueNamespace(prefix = 't'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Deletes every stream of `namespace` (channel families, dead letters, the lease bucket). */
export async function dropNamespace(url: string, namespace: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const doomed: string[] = [];
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`${namespace}_`) || name === `KV_${namespace}_leases`) doomed.push(name);
    }
    for (const name of doomed) await jsm.streams.delete(name);
  } finally {
    await nc.close();
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const NATS_SERVER = process.env.FERRY_NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

/**
 * Whether fault tests can start their own server: the `nats-server` binary is there, or the run
 * requires NATS (FERRY_REQUIRE_SERVERS names it), in which case a missing binary fails the test.
 */
export function canStartNatsServer(): boolean {
  const required = (process.env.FERRY_REQUIRE_SERVERS ?? '').split(',').map((s) => s.trim());
  return existsSync(NATS_SERVER) || required.includes('nats');
}

/** A `nats-server` with JetStream on a free port and its own store, for fault tests. */
export class NatsServerProcess {
  #child?: ChildProcess;

  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  /** The server's URL. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts a server on a free port with a fresh store directory. */
  static async start(): Promise<NatsServerProcess> {
    const server = new NatsServerProcess(await freePort(), await mkdtemp(join(tmpdir(), 'ferry-nats-')));
    await server.restart();
    return server;
  }

  /** (Re)starts the process on the same port and store; resolves once it accepts clients. */
  async restart(): Promise<void> {
    const child = spawn(
      NATS_SERVER,
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        if (log.includes('Server is ready')) {
          child.stderr?.off('data', onData);
          child.stderr?.resume();
          resolve();
        }
      };
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${log}`)));
    });
  }

  /** Kills the process without warning (SIGKILL) and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  /** Stops the process and removes its store. */
  async stop(): Promise<void> {
    await this.kill();
    await rm(this.storeDir, { recursive: true, force: true });
  }
}
