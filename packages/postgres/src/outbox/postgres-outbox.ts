import { type Message, type Outbox, toWire, type WireMessage } from '@ferry/core';
import { queryIn, type TxHandle } from '../tx.js';
import { appendStatement, deferAppend } from './deferred-appends.js';

export { OUTBOX_NOTIFY_CHANNEL } from './deferred-appends.js';

/**
 * Appends wire messages in one statement: the rows and, if a relay is waiting for work, its
 * wake-up (a NOTIFY, delivered only if the transaction commits). In a transaction Ferry opened,
 * the statement is deferred to the next one sent on it (see deferred-appends.ts); elsewhere it
 * runs at once.
 */
export async function appendWire(tx: TxHandle, messages: readonly WireMessage[]): Promise<void> {
  if (messages.length === 0 || deferAppend(tx, messages)) return;
  const statement = appendStatement(messages);
  await queryIn(tx, statement.text, statement.values, statement.name);
}

/** A row of `ferry.outbox` as the relays read it. */
export interface OutboxRow {
  position: string;
  message_id: string;
  channel: string;
  partition_key: string;
  /** The headers' JSON text (the column is text: see messaging migration 3). */
  headers: string;
  body: string;
}

/** The wire message an outbox row holds. */
export function wireOf(row: OutboxRow): WireMessage {
  return {
    id: row.message_id,
    channel: row.channel,
    partitionKey: row.partition_key,
    headers: JSON.parse(row.headers) as Record<string, string>,
    body: row.body,
  };
}

/**
 * The transactional outbox on PostgreSQL: `append` writes into `ferry.outbox` inside the
 * caller's transaction (a node-postgres client or a Kysely transaction), so the messages
 * exist if and only if the business change commits.
 *
 * @example
 * await withTransaction(pool, async (tx) => {
 *   await tx.query('INSERT INTO orders ...');
 *   await messaging.publishEvents(tx, { type: 'Order', id }, [event(OrderCreated, {...})]);
 * });
 */
export class PostgresOutbox implements Outbox<TxHandle> {
  async append(tx: TxHandle, messages: readonly Message[]): Promise<void> {
    await appendWire(tx, messages.map(toWire));
  }
}
