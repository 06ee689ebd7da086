import type { Migration } from '@ferry/postgres';

/** Tables of the runtime in the service's own database (migration set `ferry.service`). */
export const SERVICE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'exceptions',
    sql: `CREATE SCHEMA IF NOT EXISTS ferry;
      CREATE TABLE ferry.exceptions (
        service text NOT NULL,
        fingerprint text NOT NULL,
        error_type text NOT NULL,
        message text NOT NULL,
        stack text,
        trace_id text,
        context jsonb NOT NULL DEFAULT '{}',
        count bigint NOT NULL DEFAULT 1,
        first_seen timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now(),
        resolved boolean NOT NULL DEFAULT false,
        resolved_at timestamptz,
        resolved_by text,
        PRIMARY KEY (service, fingerprint));
      CREATE INDEX exceptions_open ON ferry.exceptions (service, resolved, last_seen DESC);`,
  },
  {
    version: 2,
    name: 'audit-log',
    sql: `CREATE TABLE ferry.audit_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        occurred_at timestamptz NOT NULL DEFAULT now(),
        service text NOT NULL,
        actor text NOT NULL,
        actor_roles text[] NOT NULL DEFAULT '{}',
        action text NOT NULL,
        aggregate_type text NOT NULL,
        aggregate_id text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}',
        trace_id text,
        correlation_id text);
      CREATE INDEX audit_log_aggregate ON ferry.audit_log (aggregate_type, aggregate_id, id);
      CREATE INDEX audit_log_actor ON ferry.audit_log (actor, id);`,
  },
];

/** The service registry's table (migration set `ferry.registry`), in the registry database. */
export const REGISTRY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'service-instances',
    sql: `CREATE SCHEMA IF NOT EXISTS ferry;
      CREATE TABLE ferry.service_instances (
        service text NOT NULL,
        instance_id text NOT NULL,
        url text NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        registered_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (service, instance_id));
      CREATE INDEX service_instances_live ON ferry.service_instances (service, expires_at);`,
  },
];
