import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { useTestDatabase } from '../../../../test/pg-test-database.js';
import type { Service } from '../runtime/service.js';
import { bearer, call } from '../test-support/http.js';
import { startSample } from '../test-support/sample.service.js';
import { TestIssuer } from '../testing/index.js';

const db = useTestDatabase(() => inject('embeddedPostgresUrl'), 'svc_exc');
let issuer: TestIssuer;
let service: Service;
let sentry: Server;
const envelopes: Array<{ headers: Record<string, unknown>; body: string; url: string }> = [];
let admin: Record<string, string>;

beforeAll(async () => {
  issuer = await TestIssuer.start();
  sentry = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      envelopes.push({ headers: req.headers, body, url: req.url ?? '' });
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((resolve) => sentry.listen(0, '127.0.0.1', resolve));
  const { port } = sentry.address() as AddressInfo;
  ({ service } = await startSample({
    ...issuer.settings(),
    DATABASE_URL: db().url,
    SENTRY_DSN: `http://publickey@127.0.0.1:${port}/42`,
  }));
  admin = bearer(await issuer.token({ subject: 'ops-1', roles: ['admin'] }));
});

afterAll(async () => {
  await service?.stop();
  await issuer?.close();
  sentry?.close();
});

describe('exception tracking in PostgreSQL', () => {
  it('fingerprints and de-duplicates unexpected errors, keeping counts, first/last seen and a sample', async () => {
    const first = await call(`${service.url}/boom`);
    await call(`${service.url}/boom`, {
      headers: { traceparent: '00-11111111111111111111111111111111-2222222222222222-01' },
    });
    await waitFor(async () => (await service.context.exceptions.store.list())[0]?.count === 2);
    const [tracked] = await service.context.exceptions.store.list();
    expect(tracked).toMatchObject({
      fingerprint: first.body.fingerprint,
      errorType: 'TypeError',
      message: 'the flux capacitor is empty',
      count: 2,
      resolved: false,
      traceId: '11111111111111111111111111111111',
      context: { method: 'GET', route: '/boom' },
    });
    expect(tracked!.lastSeen.getTime()).toBeGreaterThanOrEqual(tracked!.firstSeen.getTime());
    const { rows } = await service.context.pool!.query('SELECT count(*)::int AS n FROM ferry.exceptions');
    expect(rows[0].n).toBe(1);
  });

  it('lists and resolves through the admin API, for the admin role only', async () => {
    const forbidden = await call(`${service.url}/admin/exceptions`, {
      headers: bearer(await issuer.token({ roles: ['consumer'] })),
    });
    expect(forbidden.status).toBe(403);
    const list = await call(`${service.url}/admin/exceptions?resolved=false`, { headers: admin });
    expect(list.status).toBe(200);
    const { fingerprint } = list.body.exceptions[0];
    const resolved = await call(`${service.url}/admin/exceptions/${fingerprint}/resolve`, {
      method: 'POST',
      headers: admin,
    });
    expect(resolved.status).toBe(204);
    const one = await call(`${service.url}/admin/exceptions/${fingerprint}`, { headers: admin });
    expect(one.body).toMatchObject({ resolved: true, resolvedBy: 'ops-1' });
    expect(
      (await call(`${service.url}/admin/exceptions?resolved=false`, { headers: admin })).body.exceptions,
    ).toEqual([]);
    const missing = await call(`${service.url}/admin/exceptions/${'0'.repeat(32)}/resolve`, {
      method: 'POST',
      headers: admin,
    });
    expect(missing.status).toBe(404);
  });

  it('reopens a resolved exception when it happens again', async () => {
    await call(`${service.url}/boom`);
    await waitFor(
      async () => (await service.context.exceptions.store.list({ resolved: false })).length === 1,
    );
    const [again] = await service.context.exceptions.store.list();
    expect(again).toMatchObject({ resolved: false, count: 3, resolvedAt: null });
  });

  it('forwards each occurrence to the Sentry-compatible endpoint with its fingerprint', async () => {
    await waitFor(async () => envelopes.length >= 3);
    const envelope = envelopes[0]!;
    expect(envelope.url).toBe('/api/42/envelope/');
    expect(String(envelope.headers['x-sentry-auth'])).toContain('sentry_key=publickey');
    const [, itemHeader, event] = envelope.body.split('\n').map((line) => JSON.parse(line));
    expect(itemHeader).toEqual({ type: 'event' });
    expect(event.exception.values[0]).toMatchObject({
      type: 'TypeError',
      value: 'the flux capacitor is empty',
    });
    expect(event.fingerprint).toHaveLength(1);
    expect(event.tags.service).toBe('sample-orders');
    expect(event.exception.values[0].stacktrace.frames.length).toBeGreaterThan(0);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
