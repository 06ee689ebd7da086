import { randomBytes } from 'node:crypto';
import type { Broker, WireMessage } from '@ferry/core';
import type pg from 'pg';
import { withRollback } from '../database.js';
import { type OutboxRow, wireOf } from '../outbox/postgres-outbox.js';
import { ReplicationConnection } from './replication-connection.js';
import type { OutboxTable } from './replication-slot.js';

/** Options of {@link createSlotWithBacklog}. */
export interface SlotSetupOptions {
  readonly pool: pg.Pool;
  readonly connectionString: string;
  readonly slot: string;
  readonly table: OutboxTable;
  readonly broker: Broker;
  readonly batchSize: number;
  /** `unpublished` (default) publishes the rows committed before the slot; `none` skips them. */
  readonly initialBacklog?: 'unpublished' | 'none';
}

/**
 * Creates the slot so that no outbox row falls between the table and the stream, and resolves
 * to the number of rows published from the table.
 *
 * A new slot streams only transactions that commit after its consistent point; rows committed
 * before it (written while no relay ran, or left unpublished by the polling relay) are in the
 * table only. So a temporary slot is created first, exporting the snapshot of its consistent
 * point; the rows still unpublished in that snapshot are published; and only then is the
 * temporary slot copied into the permanent one, which starts at the same point. A crash before
 * the copy leaves no slot (the temporary one dies with its connection), so the next start
 * does it all again: duplicates at worst, never a gap.
 *
 * "Unpublished" is the polling relay's mark: the tailing relay never sets it, so a slot created
 * again (after an operator dropped it) publishes every row still retained, which consumers'
 * inbox absorbs; `initialBacklog: 'none'` skips the table when that is not wanted.
 */
export async function createSlotWithBacklog(options: SlotSetupOptions): Promise<number> {
  const { pool, table, broker, batchSize } = options;
  if (options.initialBacklog === 'none') {
    await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [options.slot]);
    return 0;
  }
  const temporary = `${options.slot.slice(0, 44)}_init_${randomBytes(4).toString('hex')}`;
  const replication = await ReplicationConnection.connect(options.connectionString);
  try {
    const [created] = await replication.command<{ snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${temporary} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')`,
    );
    if (!created) throw new Error('CREATE_REPLICATION_SLOT returned no row');
    const published = await withRollback(pool, async (client) => {
      let published = 0;
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query(`SET TRANSACTION SNAPSHOT '${created.snapshot_name.replace(/'/g, "''")}'`);
      let after = '0';
      for (;;) {
        const { rows } = await client.query<OutboxRow>(
          `SELECT position, message_id, channel, partition_key, headers, body
             FROM ${client.escapeIdentifier(table.schema)}.${client.escapeIdentifier(table.name)}
            WHERE published_at IS NULL AND position > $1 ORDER BY position LIMIT $2`,
          [after, batchSize],
        );
        if (rows.length === 0) break;
        const messages: WireMessage[] = rows.map(wireOf);
        await broker.publish(messages);
        published += rows.length;
        after = rows[rows.length - 1]!.position;
      }
      await client.query('COMMIT');
      return published;
    });
    await pool.query('SELECT pg_copy_logical_replication_slot($1, $2, false)', [temporary, options.slot]);
    return published;
  } finally {
    await replication.close();
  }
}
