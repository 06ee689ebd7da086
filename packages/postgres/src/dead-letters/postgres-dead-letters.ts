import type { DeadLetter, DeadLetterQuery, DeadLetterStore, NewDeadLetter } from '@ferry/core';
import { replayedWire } from '@ferry/core';
import type pg from 'pg';
import { withTransaction } from '../database.js';
import { appendWire } from '../outbox/postgres-outbox.js';

interface Row {
  id: string;
  consumer_group: string;
  message_id: string;
  channel: string;
  partition_key: string;
  headers: Record<string, string>;
  body: string;
  reason: string;
  error: string | null;
  attempts: number;
  dead_lettered_at: Date;
  replayed_at: Date | null;
}

function toDeadLetter(row: Row): DeadLetter {
  return {
    id: String(row.id),
    group: row.consumer_group,
    message: {
      id: row.message_id,
      channel: row.channel,
      partitionKey: row.partition_key,
      headers: row.headers,
      body: row.body,
    },
    reason: row.reason,
    error: row.error ?? undefined,
    attempts: row.attempts,
    deadLetteredAt: row.dead_lettered_at.toISOString(),
    replayedAt: row.replayed_at?.toISOString(),
  };
}

/**
 * The dead-letter store in the consumer's database (`ferry.dead_letters`). Replay writes the
 * message back through the outbox in the same transaction that marks it replayed, so the relay
 * carries it to its channel exactly as any other message.
 */
export class PostgresDeadLetterStore implements DeadLetterStore {
  constructor(private readonly pool: pg.Pool) {}

  async add(entry: NewDeadLetter): Promise<void> {
    const m = entry.message;
    await this.pool.query(
      `INSERT INTO ferry.dead_letters
         (consumer_group, message_id, channel, partition_key, headers, body, reason, error, attempts)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (consumer_group, message_id) DO UPDATE SET
         reason = EXCLUDED.reason, error = EXCLUDED.error, attempts = EXCLUDED.attempts,
         headers = EXCLUDED.headers, body = EXCLUDED.body, dead_lettered_at = now(), replayed_at = NULL`,
      [
        entry.group,
        m.id,
        m.channel,
        m.partitionKey,
        JSON.stringify(m.headers),
        m.body,
        entry.reason,
        entry.error ?? null,
        entry.attempts,
      ],
    );
  }

  async list(query: DeadLetterQuery = {}): Promise<DeadLetter[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT * FROM ferry.dead_letters
        WHERE ($1::text IS NULL OR consumer_group = $1)
          AND ($2::text IS NULL OR channel = $2)
          AND ($3 OR replayed_at IS NULL)
        ORDER BY id LIMIT $4`,
      [query.group ?? null, query.channel ?? null, query.includeReplayed ?? false, query.limit ?? 100],
    );
    return rows.map(toDeadLetter);
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    if (!/^\d+$/.test(id)) return undefined;
    const { rows } = await this.pool.query<Row>('SELECT * FROM ferry.dead_letters WHERE id = $1', [id]);
    return rows[0] ? toDeadLetter(rows[0]) : undefined;
  }

  async replay(id: string): Promise<void> {
    await withTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query<Row>('SELECT * FROM ferry.dead_letters WHERE id = $1 FOR UPDATE', [id]);
      const row = rows[0];
      if (!row) throw new Error(`no dead letter ${id}`);
      await appendWire(tx, [replayedWire(toDeadLetter(row).message)]);
      await tx.query('UPDATE ferry.dead_letters SET replayed_at = now() WHERE id = $1', [id]);
    });
  }
}
