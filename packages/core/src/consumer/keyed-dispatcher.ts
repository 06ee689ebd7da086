import { positiveInteger } from '../options/positive-integer.js';

/**
 * Runs work items so that items with the same key run one at a time, in the order pushed,
 * while up to `concurrency` different keys run at once. Broker adapters use it to keep
 * per-key order within a consumer group without stopping other keys.
 */
export class KeyedDispatcher<T> {
  readonly #queues = new Map<string, T[]>();
  readonly #waiting: string[] = [];
  #active = 0;
  #pending = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly run: (item: T, key: string) => Promise<void>,
  ) {
    positiveInteger(concurrency, 'concurrency');
  }

  /** Items pushed and not yet finished. */
  get pending(): number {
    return this.#pending;
  }

  /** Queues an item behind earlier items of its key. */
  push(key: string, item: T): void {
    this.#pending++;
    const queue = this.#queues.get(key);
    if (queue) {
      queue.push(item);
      return;
    }
    this.#queues.set(key, [item]);
    if (this.#active < this.concurrency) this.#start(key);
    else this.#waiting.push(key);
  }

  /** Resolves once every pushed item has finished. */
  idle(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #start(key: string): void {
    this.#active++;
    void this.#drain(key);
  }

  async #drain(key: string): Promise<void> {
    const queue = this.#queues.get(key)!;
    while (queue.length > 0) {
      const item = queue[0]!;
      try {
        await this.run(item, key);
      } catch {
        // `run` owns its errors; a rejection here must not stall the key.
      }
      queue.shift();
      this.#pending--;
    }
    this.#queues.delete(key);
    this.#active--;
    const next = this.#waiting.shift();
    if (next !== undefined) this.#start(next);
    if (this.#pending === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
