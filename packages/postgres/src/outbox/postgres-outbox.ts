import { type Message, type Outbox, toWire, type WireMessage } from '@ferry/core';
import { queryIn, type TxHandle } from '../tx.js';

/** The channel on which outbox inserts wake the polling relay. */
export const OUTBOX_NOTIFY_CHANNEL = 'ferry_outbox';

const APPEND_SQL = `
  WITH appended AS (
    INSERT INTO ferry.outbox (message_id, channel, partition_key, headers, body)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[])
    RETURNING 1
  )
  SELECT pg_notify('${OUTBOX_NOTIFY_CHANNEL}', '')
    FROM ferry.relay_state
   WHERE id = 1 AND waiting_until > clock_timestamp() AND EXISTS (SELECT 1 FROM appended)`;

/**
 * Appends wire messages in one statement, so in one round trip: the rows and, if a relay is
 * waiting for work, its wake-up (a NOTIFY, delivered only if the transaction commits). A busy
 * relay is not notified: NOTIFY serialises commits database-wide, which would cost every
 * business transaction its group commit.
 */
export async function appendWire(tx: TxHandle, messages: readonly WireMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await queryIn(
    tx,
    APPEND_SQL,
    [
      messages.map((m) => m.id),
      messages.map((m) => m.channel),
      messages.map((m) => m.partitionKey),
      messages.map((m) => JSON.stringify(m.headers)),
      messages.map((m) => m.body),
    ],
    'ferry_outbox_append',
  );
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
