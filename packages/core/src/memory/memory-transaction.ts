/**
 * A unit of work for in-memory adapters: writes register actions that run only when the
 * transaction commits, so a rolled-back handler leaves no trace, as with a database.
 */
export class MemoryTransaction {
  readonly #onCommit: Array<() => void> = [];
  #state: 'open' | 'committed' | 'rolled-back' = 'open';

  /** Runs `action` if and when this transaction commits. */
  afterCommit(action: () => void): void {
    if (this.#state !== 'open') throw new Error(`transaction already ${this.#state}`);
    this.#onCommit.push(action);
  }

  /** @internal */
  commit(): void {
    this.#state = 'committed';
    for (const action of this.#onCommit.splice(0)) action();
  }

  /** @internal */
  rollback(): void {
    this.#state = 'rolled-back';
    this.#onCommit.length = 0;
  }
}

/** Runs `work` in a new in-memory transaction; commits on success, rolls back on error. */
export async function inMemoryTransaction<T>(work: (tx: MemoryTransaction) => Promise<T>): Promise<T> {
  const tx = new MemoryTransaction();
  try {
    const result = await work(tx);
    tx.commit();
    return result;
  } catch (error) {
    tx.rollback();
    throw error;
  }
}
