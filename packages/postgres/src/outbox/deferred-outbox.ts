import type { WireMessage } from '@ferry/core';
import type pg from 'pg';
import { OUTBOX_NOTIFY_CHANNEL } from './outbox-sql.js';

const deferred = new WeakMap<object, WireMessage[]>();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Marks a transaction that Ferry itself will commit (`withTransaction`, the inbox): outbox
 * appends on it are held in memory and written by the same round trip as its COMMIT, so the
 * outbox costs the business transaction no extra round trip. Appends on transactions that the
 * caller commits are written at once.
 */
export function deferOutboxWrites(client: pg.ClientBase): void {
  deferred.set(client, []);
}

/** The buffer of a transaction whose outbox writes are deferred, if it is one. */
export function deferredOutbox(tx: object): WireMessage[] | undefined {
  return deferred.get(tx);
}

/** Forgets a transaction's deferred writes (after commit or rollback). */
export function discardDeferred(client: pg.ClientBase): void {
  deferred.delete(client);
}

/**
 * Commits, writing the deferred outbox rows first in the same simple-protocol request: one round
 * trip. If the insert fails, PostgreSQL skips the COMMIT and the caller rolls back.
 */
export async function commitWithOutbox(client: pg.ClientBase): Promise<void> {
  const messages = deferred.get(client);
  deferred.delete(client);
  if (!messages || messages.length === 0) {
    await client.query('COMMIT');
    return;
  }
  const rows = messages.map((m) => {
    if (!UUID.test(m.id)) throw new TypeError(`message id is not a UUID: ${m.id}`);
    return `('${m.id}', ${client.escapeLiteral(m.channel)}, ${client.escapeLiteral(m.partitionKey)}, ${client.escapeLiteral(JSON.stringify(m.headers))}::jsonb, ${client.escapeLiteral(m.body)})`;
  });
  await client.query(`WITH appended AS (
      INSERT INTO ferry.outbox (message_id, channel, partition_key, headers, body) VALUES ${rows.join(', ')} RETURNING 1)
    SELECT pg_notify('${OUTBOX_NOTIFY_CHANNEL}', '') FROM ferry.relay_state
     WHERE id = 1 AND waiting_until > clock_timestamp() AND EXISTS (SELECT 1 FROM appended);
    COMMIT`);
}
