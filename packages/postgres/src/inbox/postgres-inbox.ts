import type { Inbox, InboxResult } from '@ferry/core';
import type pg from 'pg';
import { withRollback } from '../database.js';
import { deferringTransaction } from '../outbox/deferred-appends.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The idempotent consumer's inbox on PostgreSQL. Each message is handled in a transaction that
 * first inserts (group, message id) into `ferry.inbox`; if the row exists the message is a
 * duplicate and nothing runs. A concurrent duplicate waits on the row's lock and then sees it.
 */
export class PostgresInbox implements Inbox<pg.PoolClient> {
  constructor(private readonly pool: pg.Pool) {}

  async handle(
    group: string,
    messageId: string,
    work: (tx: pg.PoolClient) => Promise<void>,
  ): Promise<InboxResult> {
    if (!UUID.test(messageId)) throw new TypeError(`message id is not a UUID: ${messageId}`);
    return withRollback(this.pool, async (client) => {
      // BEGIN and the inbox insert in one round trip (simple protocol; both values are escaped).
      const results = (await client.query(
        `BEGIN; INSERT INTO ferry.inbox (consumer_group, message_id) VALUES (${client.escapeLiteral(group)}, '${messageId}') ON CONFLICT DO NOTHING`,
      )) as unknown as pg.QueryResult[];
      if (results[1]?.rowCount === 0) {
        await client.query('ROLLBACK');
        return 'duplicate';
      }
      const transaction = deferringTransaction(client, { begun: true });
      await work(transaction.tx);
      await transaction.commit();
      return 'handled';
    });
  }
}
