import type { Inbox, InboxResult } from '../ports/inbox.port.js';
import { MemoryTransaction } from './memory-transaction.js';

/** An in-memory inbox: records (group, message id) when the handler's transaction commits. */
export class MemoryInbox implements Inbox<MemoryTransaction> {
  readonly #seen = new Set<string>();

  async handle(
    group: string,
    messageId: string,
    work: (tx: MemoryTransaction) => Promise<void>,
  ): Promise<InboxResult> {
    const key = `${group}\u0000${messageId}`;
    if (this.#seen.has(key)) return 'duplicate';
    const tx = new MemoryTransaction();
    try {
      await work(tx);
    } catch (error) {
      tx.rollback();
      throw error;
    }
    if (this.#seen.has(key)) {
      tx.rollback();
      return 'duplicate';
    }
    this.#seen.add(key);
    tx.commit();
    return 'handled';
  }
}
