import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type EmbeddedPostgresServer, startEmbeddedPostgres, stopEmbeddedPostgres } from '@ferry/postgres';
import { reachable } from '../servers.js';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The crash tests' own embedded PostgreSQL, which they restart mid-run. */
export class CrashPostgres {
  #server: EmbeddedPostgresServer | undefined;
  restarts = 0;

  get url(): string {
    return this.#server!.url;
  }

  async start(): Promise<void> {
    this.#server = await startEmbeddedPostgres({ dataDir: '.ferry/crash-postgres' });
  }

  /** Fast shutdown (every connection is cut), then start again on the same port. */
  async restart(): Promise<void> {
    const port = this.#server!.port;
    await this.stop();
    this.#server = await startEmbeddedPostgres({ dataDir: '.ferry/crash-postgres', port });
    this.restarts++;
  }

  /** Stops the server, whichever process started it, and waits until it is gone. */
  async stop(): Promise<void> {
    await this.#server?.stop();
    await stopEmbeddedPostgres('.ferry/crash-postgres');
  }
}

/** A private nats-server with JetStream, so that a test can kill and restart it. */
export class NatsServerProcess {
  #child: ChildProcess | undefined;
  #dir = '';
  port = 0;
  restarts = 0;
  static readonly binary = process.env.FERRY_NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

  static available(): boolean {
    return existsSync(NatsServerProcess.binary);
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!this.#dir) this.#dir = await mkdtemp(join(tmpdir(), 'ferry-crash-nats-'));
    if (!this.port) this.port = await freePort();
    this.#child = spawn(
      NatsServerProcess.binary,
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.#dir],
      {
        stdio: 'ignore',
      },
    );
    await until(() => reachable(this.url, 500), 'nats-server to listen');
  }

  /** SIGKILL, then start on the same port with the same store. */
  async restart(): Promise<void> {
    await this.#kill();
    await this.start();
    this.restarts++;
  }

  async #kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.#kill();
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
  }
}

/** Restarts the RabbitMQ application on the machine's server (state and quorum queues survive). */
export async function restartRabbitMq(url: string): Promise<void> {
  await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
  await run('rabbitmqctl', ['start_app'], { timeout: 120_000 });
  await until(() => reachable(url, 500), 'RabbitMQ to listen');
}

/** Deletes every queue and exchange whose name contains `namespace` from the machine's RabbitMQ. */
export async function deleteRabbitMqNamespace(url: string, namespace: string): Promise<void> {
  const list = async (what: 'list_queues' | 'list_exchanges') =>
    (await run('rabbitmqctl', [what, '-q', '--no-table-headers', 'name'], { timeout: 60_000 })).stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((name) => name.includes(namespace));
  const amqp = await import('amqplib');
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const queue of await list('list_queues')) await channel.deleteQueue(queue);
    for (const exchange of await list('list_exchanges')) await channel.deleteExchange(exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
}
