import pg from 'pg';

/**
 * What Ferry uses of a Kysely transaction, spelled out rather than imported: Kysely is an optional
 * peer dependency, so these declarations must not need its types (any `Kysely<DB>` fits).
 */
export interface KyselyExecutor {
  /** Takes Kysely's `CompiledQuery`, which only Ferry builds here; `never` lets any Kysely's fit. */
  executeQuery<R>(query: never): Promise<{ readonly rows: R[] }>;
}

/**
 * The caller's transaction: a node-postgres client on which BEGIN was issued, or a Kysely
 * transaction. Ferry's writes (outbox, audit, saga state) run through it so that they commit or
 * roll back with the business change (STYLE.md 4).
 */
export type TxHandle = pg.ClientBase | KyselyExecutor;

/**
 * Kysely's raw-query builder, loaded on the first Kysely transaction: Kysely is an optional peer
 * dependency, so a service on node-postgres alone has no Kysely to import.
 */
let compiledQuery: typeof import('kysely').CompiledQuery | undefined;

/** Runs one statement on the caller's transaction and returns its rows. */
export async function queryIn<R extends Record<string, unknown> = Record<string, unknown>>(
  tx: TxHandle,
  sql: string,
  parameters: readonly unknown[],
  name?: string,
): Promise<R[]> {
  if (tx instanceof pg.Pool) {
    throw new TypeError(
      'pass the transaction’s client, not the pool: a pool query runs outside your transaction',
    );
  }
  if ('executeQuery' in tx) {
    compiledQuery ??= (await import('kysely')).CompiledQuery;
    const result = await tx.executeQuery<R>(compiledQuery.raw(sql, [...parameters]) as never);
    return [...result.rows];
  }
  const result = await (tx as pg.ClientBase).query<R>(
    name ? { name, text: sql, values: [...parameters] } : { text: sql, values: [...parameters] },
  );
  return result.rows;
}
