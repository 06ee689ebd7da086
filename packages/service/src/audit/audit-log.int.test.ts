import { withTransaction } from '@ferry/postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { useTestDatabase } from '../../../../test/pg-test-database.js';
import { defineRoute } from '../http/route.js';
import type { Service } from '../runtime/service.js';
import { bearer, call } from '../test-support/http.js';
import { startSample } from '../test-support/sample.service.js';
import { TestIssuer } from '../testing/index.js';

const db = useTestDatabase(() => inject('embeddedPostgresUrl'), 'svc_audit');
let issuer: TestIssuer;
let service: Service;

beforeAll(async () => {
  issuer = await TestIssuer.start();
  ({ service } = await startSample(
    { ...issuer.settings(), DATABASE_URL: db().url },
    {
      migrations: [
        { version: 1, name: 'orders', sql: 'CREATE TABLE orders (id text PRIMARY KEY, state text NOT NULL)' },
      ],
      routes: (ctx) => [
        defineRoute({
          method: 'POST',
          url: '/orders/:id/cancel',
          schema: {
            params: z.object({ id: z.string() }),
            querystring: z.object({ fail: z.stringbool().default(false) }),
          },
          handler: async ({ params, query }) => {
            await withTransaction(ctx.pool!, async (tx) => {
              await tx.query("INSERT INTO orders (id, state) VALUES ($1, 'CANCELLED')", [params.id]);
              await ctx.audit!.record(tx, {
                action: 'order.cancel',
                aggregateType: 'Order',
                aggregateId: params.id,
                details: { reason: 'customer request' },
              });
              if (query.fail) throw new Error('commit refused');
            });
            return { cancelled: params.id };
          },
        }),
      ],
    },
  ));
});

afterAll(async () => {
  await service?.stop();
  await issuer?.close();
});

describe('audit log', () => {
  it('records who did what to which aggregate in the same transaction as the change', async () => {
    const token = await issuer.token({ subject: 'consumer-5', roles: ['consumer'] });
    const res = await call(`${service.url}/orders/o-1/cancel`, {
      method: 'POST',
      headers: { ...bearer(token), 'x-correlation-id': 'corr-a1' },
    });
    expect(res.status).toBe(200);
    const [entry] = await service.context.audit!.query({ aggregateType: 'Order', aggregateId: 'o-1' });
    expect(entry).toMatchObject({
      service: 'sample-orders',
      actor: 'consumer-5',
      actorRoles: ['consumer'],
      action: 'order.cancel',
      details: { reason: 'customer request' },
      correlationId: 'corr-a1',
    });
    expect(entry!.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('leaves no entry when the change rolls back', async () => {
    const token = await issuer.token({ subject: 'consumer-6', roles: ['consumer'] });
    const res = await call(`${service.url}/orders/o-2/cancel?fail=true`, {
      method: 'POST',
      headers: bearer(token),
    });
    expect(res.status).toBe(500);
    expect(await service.context.audit!.query({ aggregateId: 'o-2' })).toEqual([]);
    const { rows } = await service.context.pool!.query("SELECT 1 FROM orders WHERE id = 'o-2'");
    expect(rows).toEqual([]);
  });

  it('answers queries through the admin API, newest first and paged', async () => {
    const token = await issuer.token({ subject: 'consumer-5', roles: ['consumer'] });
    for (const id of ['o-3', 'o-4'])
      await call(`${service.url}/orders/${id}/cancel`, { method: 'POST', headers: bearer(token) });
    const admin = bearer(await issuer.token({ subject: 'auditor', roles: ['admin'] }));
    const page1 = await call(`${service.url}/admin/audit?actor=consumer-5&limit=2`, { headers: admin });
    expect(page1.body.entries.map((e: { aggregateId: string }) => e.aggregateId)).toEqual(['o-4', 'o-3']);
    const page2 = await call(
      `${service.url}/admin/audit?actor=consumer-5&limit=2&before=${page1.body.entries[1].id}`,
      {
        headers: admin,
      },
    );
    expect(page2.body.entries.map((e: { aggregateId: string }) => e.aggregateId)).toEqual(['o-1']);
    const bad = await call(`${service.url}/admin/audit?before=abc`, { headers: admin });
    expect(bad.status).toBe(400);
    const nope = await call(`${service.url}/admin/audit`, { headers: bearer(token) });
    expect(nope.status).toBe(403);
  });
});
