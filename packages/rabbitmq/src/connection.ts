import { backoffDelay } from '@ferry/core';
import amqp, { type ChannelModel } from 'amqplib';
import type { ResolvedOptions } from './rabbitmq.options.js';
import { sleep } from './sleep.js';

/** Runs after every (re)connection, before the broker reports ready again. */
export type RestoreHook = (model: ChannelModel) => Promise<void>;

/** Thrown when an operation needs the connection and the broker has been closed. */
export class RabbitMqClosedError extends Error {
  override readonly name = 'RabbitMqClosedError';
}

/**
 * Holds the one AMQP connection of a broker and keeps it open: when it drops it reconnects with
 * backoff, runs the restore hooks (re-declare, re-subscribe) and only then reports ready again.
 */
export class ConnectionKeeper {
  #model: ChannelModel | undefined;
  #ready = false;
  #closed = false;
  readonly #hooks = new Set<RestoreHook>();
  #readyWaiters: Array<() => void> = [];
  readonly #stop = new AbortController();
  #reconnecting: Promise<void> | undefined;

  constructor(private readonly options: ResolvedOptions) {}

  /** Opens the first connection; rejects if RabbitMQ cannot be reached, so start-up fails fast. */
  async start(): Promise<void> {
    let model: ChannelModel;
    try {
      model = await this.#open();
    } catch (error) {
      throw new Error(
        `cannot connect to RabbitMQ at ${redacted(this.options.url)}: ${asError(error).message}`,
        {
          cause: error,
        },
      );
    }
    this.#attach(model);
    this.#setReady(true);
  }

  /** Whether the connection is open and everything has been restored on it. */
  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  /** The open connection, if any. */
  get model(): ChannelModel | undefined {
    return this.#closed ? undefined : this.#model;
  }

  /** A signal that aborts when the broker closes. */
  get closing(): AbortSignal {
    return this.#stop.signal;
  }

  /** Registers a hook run after each reconnection; returns a function that removes it. */
  onRestore(hook: RestoreHook): () => void {
    this.#hooks.add(hook);
    return () => this.#hooks.delete(hook);
  }

  /** Resolves with the connection once it is ready, or rejects after `deadline` (epoch ms). */
  async whenReady(deadline: number): Promise<ChannelModel> {
    for (;;) {
      if (this.#closed) throw new RabbitMqClosedError('the RabbitMQ broker is closed');
      if (this.#ready && this.#model) return this.#model;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('RabbitMQ is not reachable (reconnecting)');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#readyWaiters.push(done);
      });
    }
  }

  /** Closes the connection and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready = false;
    this.#stop.abort();
    this.#wakeWaiters();
    const model = this.#model;
    this.#model = undefined;
    await model?.close().catch(() => {});
    await this.#reconnecting;
  }

  #open(): Promise<ChannelModel> {
    return amqp.connect(this.options.url, {
      timeout: 10_000,
      noDelay: true,
      clientProperties: { connection_name: this.options.connectionName },
    });
  }

  #attach(model: ChannelModel): void {
    this.#model = model;
    model.on('error', () => {
      // The 'close' event that follows carries the same error and drives the reconnection.
    });
    model.on('blocked', (reason: string) => this.options.onEvent({ kind: 'blocked', reason }));
    model.on('unblocked', () => this.options.onEvent({ kind: 'unblocked' }));
    model.on('close', (error?: Error) => {
      if (this.#model !== model) return;
      this.#model = undefined;
      this.#setReady(false);
      if (this.#closed) return;
      this.options.onEvent({ kind: 'connection-lost', error });
      this.#reconnecting = this.#reconnect();
    });
  }

  async #reconnect(): Promise<void> {
    for (let attempt = 1; !this.#closed; attempt++) {
      const delayMs = backoffDelay(this.options.reconnect, attempt);
      await sleep(delayMs, this.#stop.signal);
      if (this.#closed) return;
      let model: ChannelModel | undefined;
      try {
        model = await this.#open();
        if (this.#closed) {
          await model.close().catch(() => {});
          return;
        }
        this.#attach(model);
        for (const hook of [...this.#hooks]) await hook(model);
        // Lost again while restoring: the close handler has started the next round.
        if (this.#model !== model) return;
        this.#setReady(true);
        this.options.onEvent({ kind: 'reconnected', attempt });
        return;
      } catch (error) {
        this.options.onEvent({ kind: 'reconnect-failed', attempt, delayMs, error: asError(error) });
        if (model === undefined) continue;
        if (this.#model !== model) return;
        // Restoring failed on a live connection: drop it and start over on a fresh one.
        this.#model = undefined;
        await model.close().catch(() => {});
      }
    }
  }

  #setReady(ready: boolean): void {
    this.#ready = ready;
    if (ready) this.#wakeWaiters();
  }

  #wakeWaiters(): void {
    for (const wake of this.#readyWaiters.splice(0)) wake();
  }
}

/** Normalises a thrown value to an Error. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** The URL without its password, for messages. */
function redacted(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  parsed.search = '';
  return parsed.toString();
}
