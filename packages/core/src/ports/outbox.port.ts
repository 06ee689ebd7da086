import type { Message } from '../messaging/message.js';

/**
 * The transactional outbox: messages are written in the caller's transaction `Tx` and leave
 * for the broker only once that transaction commits (a relay carries them).
 */
export interface Outbox<Tx> {
  /** Adds messages to the outbox inside `tx`; they are lost with it if it rolls back. */
  append(tx: Tx, messages: readonly Message[]): Promise<void>;
}
