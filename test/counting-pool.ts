import pg from 'pg';

/** A one-client pool that counts the requests its client sends (each `query` call is one request). */
export function countingPool(connectionString: string): { readonly pool: pg.Pool; requests: number } {
  const counted = { pool: new pg.Pool({ connectionString, max: 1 }), requests: 0 };
  const wrapped = new WeakSet<pg.PoolClient>();
  counted.pool.on('acquire', (client) => {
    if (wrapped.has(client)) return;
    wrapped.add(client);
    const query = client.query.bind(client);
    (client as unknown as { query: typeof query }).query = ((...args: Parameters<typeof query>) => {
      counted.requests++;
      return query(...args);
    }) as typeof query;
  });
  return counted;
}
