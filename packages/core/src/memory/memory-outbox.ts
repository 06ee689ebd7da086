import { type Message, toWire, type WireMessage } from '../messaging/message.js';
import type { Broker } from '../ports/broker.port.js';
import type { Outbox } from '../ports/outbox.port.js';
import type { MemoryTransaction } from './memory-transaction.js';

/**
 * An in-memory outbox with its relay: messages appended in a transaction are published to the
 * broker, in order, once the transaction commits.
 */
export class MemoryOutbox implements Outbox<MemoryTransaction> {
  readonly published: WireMessage[] = [];
  #chain: Promise<void> = Promise.resolve();

  constructor(private readonly broker: Broker) {}

  async append(tx: MemoryTransaction, messages: readonly Message[]): Promise<void> {
    const wire = messages.map(toWire);
    tx.afterCommit(() => {
      this.#chain = this.#chain.then(async () => {
        await this.broker.publish(wire);
        this.published.push(...wire);
      });
    });
  }

  /** Resolves once everything committed so far has been published. */
  flushed(): Promise<void> {
    return this.#chain;
  }
}
