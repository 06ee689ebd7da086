import {
  defineCommand,
  inMemoryTransaction,
  MemoryBroker,
  MemoryDeadLetterStore,
  MemoryOutbox,
  Messaging,
  toWire,
} from '@ferry/core';
import { waitFor } from '@ferry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Service } from '../runtime/service.js';
import { bearer, call } from '../test-support/http.js';
import { startSample } from '../test-support/sample.service.js';
import { TestIssuer } from '../testing/index.js';
import { deadLetterRoutes } from './dead-letter.routes.js';

const CreateTicket = defineCommand('CreateTicket', z.object({ orderId: z.string() }), 'kitchenService');

describe('dead-letter admin API', () => {
  let issuer: TestIssuer;
  let service: Service;
  const broker = new MemoryBroker();
  const store = new MemoryDeadLetterStore(broker);
  const replayed: string[] = [];

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    ({ service } = await startSample(issuer.settings(), { routes: () => deadLetterRoutes(store) }));
    await broker.subscribe(
      { channel: 'kitchenService', group: 'watcher' },
      async (d) => void replayed.push(d.message.id),
    );
    const messaging = new Messaging(new MemoryOutbox(broker));
    const sent = await inMemoryTransaction((tx) =>
      messaging.sendCommand(tx, CreateTicket, { orderId: 'o-1' }),
    );
    await store.add({
      group: 'kitchen',
      message: toWire(sent),
      reason: 'handler failed: Error: no such restaurant',
      attempts: 5,
    });
  });
  afterAll(async () => {
    await service?.stop();
    await issuer?.close();
  });

  const admin = async () => bearer(await issuer.token({ roles: ['admin'] }));

  it('lists, reads and replays dead letters for the admin role', async () => {
    const list = await call(`${service.url}/admin/dead-letters?group=kitchen`, { headers: await admin() });
    expect(list.status).toBe(200);
    expect(list.body.deadLetters).toHaveLength(1);
    const [dead] = list.body.deadLetters;
    expect(dead).toMatchObject({
      group: 'kitchen',
      attempts: 5,
      reason: 'handler failed: Error: no such restaurant',
      replayedAt: null,
    });
    const one = await call(`${service.url}/admin/dead-letters/${dead.id}`, { headers: await admin() });
    expect(one.body.message.headers.type).toBe('CreateTicket');
    const replay = await call(`${service.url}/admin/dead-letters/${dead.id}/replay`, {
      method: 'POST',
      headers: await admin(),
    });
    expect(replay.status).toBe(202);
    expect(replay.body.replayedAt).not.toBeNull();
    await waitFor(() => replayed.includes(dead.message.id), 'the replayed message on its channel');
    const after = await call(`${service.url}/admin/dead-letters`, { headers: await admin() });
    expect(after.body.deadLetters).toEqual([]);
  });

  it('answers problem+json for a missing dead letter, a bad id, an unknown filter and a caller without the role', async () => {
    const missing = await call(`${service.url}/admin/dead-letters/999`, { headers: await admin() });
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toContain('application/problem+json');
    expect((await call(`${service.url}/admin/dead-letters/abc`, { headers: await admin() })).status).toBe(
      400,
    );
    expect(
      (await call(`${service.url}/admin/dead-letters?colour=red`, { headers: await admin() })).status,
    ).toBe(400);
    const consumer = bearer(await issuer.token({ roles: ['consumer'] }));
    expect((await call(`${service.url}/admin/dead-letters`, { headers: consumer })).status).toBe(403);
    expect((await call(`${service.url}/admin/dead-letters`)).status).toBe(401);
  });
});
