import type pg from 'pg';
import type { ExceptionOccurrence, ExceptionStore, TrackedException } from './exception.store.js';

interface Row {
  fingerprint: string;
  error_type: string;
  message: string;
  stack: string | null;
  trace_id: string | null;
  context: Record<string, unknown>;
  count: string;
  first_seen: Date;
  last_seen: Date;
  resolved: boolean;
  resolved_at: Date | null;
  resolved_by: string | null;
}

const toTracked = (row: Row): TrackedException => ({
  fingerprint: row.fingerprint,
  errorType: row.error_type,
  message: row.message,
  stack: row.stack,
  traceId: row.trace_id,
  context: row.context,
  count: Number(row.count),
  firstSeen: row.first_seen,
  lastSeen: row.last_seen,
  resolved: row.resolved,
  resolvedAt: row.resolved_at,
  resolvedBy: row.resolved_by,
});

/**
 * Tracked exceptions in `ferry.exceptions` of the service's database: one row per fingerprint,
 * counted with a single upsert so concurrent occurrences never lose a count.
 */
export class PostgresExceptionStore implements ExceptionStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly service: string,
  ) {}

  async record(o: ExceptionOccurrence): Promise<{ count: number }> {
    const { rows } = await this.pool.query<{ count: string }>(
      `INSERT INTO ferry.exceptions (service, fingerprint, error_type, message, stack, trace_id, context)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (service, fingerprint) DO UPDATE SET
         count = ferry.exceptions.count + 1, last_seen = now(), message = EXCLUDED.message,
         stack = EXCLUDED.stack, trace_id = EXCLUDED.trace_id, context = EXCLUDED.context,
         resolved = false, resolved_at = NULL, resolved_by = NULL
       RETURNING count`,
      [this.service, o.fingerprint, o.errorType, o.message, o.stack ?? null, o.traceId ?? null, o.context],
    );
    return { count: Number(rows[0]!.count) };
  }

  async list(
    filter: { resolved?: boolean | undefined; limit?: number | undefined } = {},
  ): Promise<TrackedException[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT * FROM ferry.exceptions WHERE service = $1 AND ($2::boolean IS NULL OR resolved = $2)
       ORDER BY last_seen DESC LIMIT $3`,
      [this.service, filter.resolved ?? null, filter.limit ?? 100],
    );
    return rows.map(toTracked);
  }

  async get(fingerprint: string): Promise<TrackedException | undefined> {
    const { rows } = await this.pool.query<Row>(
      'SELECT * FROM ferry.exceptions WHERE service = $1 AND fingerprint = $2',
      [this.service, fingerprint],
    );
    return rows[0] ? toTracked(rows[0]) : undefined;
  }

  async resolve(fingerprint: string, by: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE ferry.exceptions SET resolved = true, resolved_at = now(), resolved_by = $3
       WHERE service = $1 AND fingerprint = $2`,
      [this.service, fingerprint, by],
    );
    return (rowCount ?? 0) > 0;
  }
}
