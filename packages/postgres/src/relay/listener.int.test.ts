import { sleep, TcpProxy, waitFor } from '@ferry/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { PgListener } from './listener.js';

for (const target of postgresTargets()) {
  describe(`PgListener (${target.name} server)`, () => {
    const db = useTestDatabase(() => target.adminUrl, 'listener');
    let admin: pg.Client;
    let proxy: TcpProxy;
    /** The test database's URL through the proxy (over TCP, whatever the server's socket). */
    let proxied: string;

    beforeAll(async () => {
      admin = new pg.Client({ connectionString: db().url });
      await admin.connect();
      const url = new URL(db().url);
      url.searchParams.delete('host');
      proxy = await TcpProxy.start(url.hostname, Number(url.port) || 5432);
      proxied = proxy.route(url.toString());
    });
    afterAll(async () => {
      await proxy.close();
      await admin.end();
    });

    /** Sessions of the test database whose last statement was the LISTEN on `channel`. */
    const listening = async (channel: string) => {
      const { rows } = await admin.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query = $2',
        [db().name, `LISTEN "${channel}"`],
      );
      return rows[0]!.n;
    };

    it('after an outage listens again on exactly one connection, hears a notification once, and leaves nothing open when stopped', async () => {
      const channel = `listener_outage_${process.pid}`;
      const heard: string[] = [];
      const listener = new PgListener(proxied, channel, (payload) => heard.push(payload), 20);
      try {
        await listener.start();
        expect(await listening(channel)).toBe(1);

        // The connection is cut and reconnections are refused for ~25 retry periods: each refused
        // attempt is reported by node-postgres more than once, which used to start a second, third…
        // chain of attempts, each of which then kept a connection of its own.
        proxy.refuse();
        await sleep(500);
        proxy.accept();
        await waitFor(() => listener.connected, 'the listener to reconnect');
        await sleep(300); // time for any second chain of attempts to connect too
        expect(await listening(channel)).toBe(1);
        expect(proxy.open).toBe(1);

        heard.length = 0;
        await admin.query(`NOTIFY "${channel}", 'hello'`);
        await waitFor(() => heard.includes('hello'), 'the notification');
        await sleep(100);
        expect(heard.filter((payload) => payload === 'hello')).toHaveLength(1);

        await listener.stop();
        await waitFor(() => proxy.open === 0, 'the connection to close');
      } finally {
        await listener.stop();
      }
    });

    it('a start that fails rejects and leaves nothing open or retrying', async () => {
      const channel = `listener_refused_${process.pid}`;
      const listener = new PgListener(proxied, channel, () => {}, 20);
      proxy.refuse();
      try {
        await expect(listener.start()).rejects.toThrow();
      } finally {
        proxy.accept();
      }
      await sleep(300); // a retry left running would have connected by now
      expect(proxy.open).toBe(0);
      expect(await listening(channel)).toBe(0);
      expect(listener.connected).toBe(false);
    });
  });
}
