import type { Broker } from '@ferry/core';
import type { Queryable } from '@ferry/postgres';

/** What a check found; throwing counts as down with the error's message. */
export interface CheckResult {
  readonly ok: boolean;
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
}

/** A readiness check: the database, the broker, the relay's lag, a subscription. */
export interface HealthCheck {
  readonly name: string;
  readonly check: () => Promise<CheckResult | boolean | undefined> | CheckResult | boolean | undefined;
  /** Counted as down when slower than this (default 2000 ms). */
  readonly timeoutMs?: number | undefined;
}

/** One check's outcome in the readiness report. */
export interface CheckStatus {
  readonly status: 'UP' | 'DOWN';
  readonly durationMs: number;
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
  readonly error?: string | undefined;
}

/** Runs every check at once, each bounded by its timeout. */
export async function runChecks(checks: readonly HealthCheck[]): Promise<Record<string, CheckStatus>> {
  const entries = await Promise.all(
    checks.map(async (c): Promise<[string, CheckStatus]> => {
      const started = performance.now();
      const timeoutMs = c.timeoutMs ?? 2_000;
      let timer: NodeJS.Timeout | undefined;
      try {
        const result = await Promise.race([
          Promise.resolve().then(() => c.check()),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        const ok = typeof result === 'object' ? result.ok : result !== false;
        const detail = typeof result === 'object' ? result.detail : undefined;
        return [c.name, { status: ok ? 'UP' : 'DOWN', durationMs: elapsed(started), detail }];
      } catch (error) {
        return [c.name, { status: 'DOWN', durationMs: elapsed(started), error: (error as Error).message }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return Object.fromEntries(entries);
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 10) / 10;

/** Ready when PostgreSQL answers `SELECT 1`. */
export function postgresCheck(db: Queryable, name = 'database'): HealthCheck {
  return {
    name,
    check: async () => {
      await db.query('SELECT 1');
      return true;
    },
  };
}

/** Ready when the broker says its connection is usable. */
export function brokerCheck(
  broker: Pick<Broker, 'isReady' | 'name'>,
  name = `broker:${broker.name}`,
): HealthCheck {
  return { name, check: () => ({ ok: broker.isReady() }) };
}

/**
 * Ready while a lag stays at or under `max`: the relay's backlog or age of its oldest
 * unpublished message, a projection's distance behind its stream.
 */
export function lagCheck(name: string, lag: () => Promise<number> | number, max: number): HealthCheck {
  return {
    name,
    check: async () => {
      const value = await lag();
      return { ok: value <= max, detail: { lag: value, max } };
    },
  };
}
