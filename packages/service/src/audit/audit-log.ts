import type { Queryable } from '@ferry/postgres';
import { trace } from '@opentelemetry/api';
import type { Principal } from '../auth/principal.js';
import { currentCorrelationId, currentPrincipal } from '../context/request-context.js';

/** What to record: who (default: the current principal) did what to which aggregate. */
export interface AuditEntry {
  /** A verb phrase, e.g. `order.cancel`. */
  readonly action: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** Anything that helps a reader later; no secrets. */
  readonly details?: Readonly<Record<string, unknown>> | undefined;
  /** Default: the principal of the current request or message; `system` without one. */
  readonly principal?: Principal | undefined;
}

/** A recorded audit entry. */
export interface AuditRecord {
  readonly id: string;
  readonly occurredAt: Date;
  readonly service: string;
  readonly actor: string;
  readonly actorRoles: readonly string[];
  readonly action: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly details: Readonly<Record<string, unknown>>;
  readonly traceId: string | null;
  readonly correlationId: string | null;
}

/** Filters of {@link AuditLog.query}; entries come newest first, `before` pages back. */
export interface AuditQuery {
  readonly aggregateType?: string | undefined;
  readonly aggregateId?: string | undefined;
  readonly actor?: string | undefined;
  readonly action?: string | undefined;
  /** Only entries with a smaller id (the last id of the previous page). */
  readonly before?: string | undefined;
  readonly limit?: number | undefined;
}

interface Row {
  id: string;
  occurred_at: Date;
  service: string;
  actor: string;
  actor_roles: string[];
  action: string;
  aggregate_type: string;
  aggregate_id: string;
  details: Record<string, unknown>;
  trace_id: string | null;
  correlation_id: string | null;
}

/**
 * The audit log in `ferry.audit_log`: who did what to which aggregate. `record` writes through
 * the caller's transaction (STYLE.md 4), so an entry exists exactly when the change committed.
 * @example
 * await withTransaction(pool, async (tx) => {
 *   await orders.cancel(tx, orderId);
 *   await audit.record(tx, { action: 'order.cancel', aggregateType: 'Order', aggregateId: orderId });
 * });
 */
export class AuditLog {
  constructor(
    private readonly reader: Queryable,
    private readonly service: string,
  ) {}

  /** Writes one entry in `tx`; it commits or rolls back with the caller's change. */
  async record(tx: Queryable, entry: AuditEntry): Promise<void> {
    const principal = entry.principal ?? currentPrincipal();
    await tx.query(
      `INSERT INTO ferry.audit_log
         (service, actor, actor_roles, action, aggregate_type, aggregate_id, details, trace_id, correlation_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        this.service,
        principal?.subject ?? 'system',
        principal?.roles ?? [],
        entry.action,
        entry.aggregateType,
        entry.aggregateId,
        entry.details ?? {},
        trace.getActiveSpan()?.spanContext().traceId ?? null,
        currentCorrelationId() ?? null,
      ],
    );
  }

  /** Entries matching every given filter, newest first. */
  async query(filter: AuditQuery = {}): Promise<AuditRecord[]> {
    const { rows } = await this.reader.query<Row>(
      `SELECT * FROM ferry.audit_log
       WHERE service = $1
         AND ($2::text IS NULL OR aggregate_type = $2) AND ($3::text IS NULL OR aggregate_id = $3)
         AND ($4::text IS NULL OR actor = $4) AND ($5::text IS NULL OR action = $5)
         AND ($6::bigint IS NULL OR id < $6)
       ORDER BY id DESC LIMIT $7`,
      [
        this.service,
        filter.aggregateType ?? null,
        filter.aggregateId ?? null,
        filter.actor ?? null,
        filter.action ?? null,
        filter.before ?? null,
        Math.min(filter.limit ?? 50, 500),
      ],
    );
    return rows.map((row) => ({
      id: String(row.id),
      occurredAt: row.occurred_at,
      service: row.service,
      actor: row.actor,
      actorRoles: row.actor_roles,
      action: row.action,
      aggregateType: row.aggregate_type,
      aggregateId: row.aggregate_id,
      details: row.details,
      traceId: row.trace_id,
      correlationId: row.correlation_id,
    }));
  }
}
