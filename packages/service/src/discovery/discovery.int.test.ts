import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { useTestDatabase } from '../../../../test/pg-test-database.js';
import { defineRoute } from '../http/route.js';
import { createService } from '../runtime/create-service.js';
import type { Service } from '../runtime/service.js';
import { testSettings } from '../test-support/sample.service.js';
import { LogCapture } from '../testing/index.js';
import { PostgresServiceRegistry } from './postgres.registry.js';
import { DnsDiscovery, StaticDiscovery } from './service-discovery.js';

const db = useTestDatabase(() => inject('embeddedPostgresUrl'), 'svc_disc');
const running: Service[] = [];

afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
});

async function kitchenInstance(id: string, mode: Record<string, string>): Promise<Service> {
  const service = await createService({
    name: 'kitchen',
    logDestination: new LogCapture(),
    configLayers: { env: testSettings({ AUTH_MODE: 'none', SERVICE_INSTANCE_ID: id, ...mode }) },
    routes: [defineRoute({ method: 'GET', url: '/whoami', handler: async () => ({ instance: id }) })],
  });
  await service.start();
  running.push(service);
  return service;
}

async function orderService(mode: Record<string, string>): Promise<Service> {
  const service = await createService({
    name: 'order',
    logDestination: new LogCapture(),
    configLayers: { env: testSettings({ AUTH_MODE: 'none', ...mode }) },
  });
  running.push(service);
  return service;
}

describe('service discovery with a PostgreSQL registry', () => {
  let registryMode: Record<string, string>;
  let k1: Service;
  let k2: Service;
  let order: Service;

  beforeAll(async () => {
    registryMode = {
      DISCOVERY_MODE: 'registry',
      DATABASE_URL: db().url,
      DISCOVERY_TTL_MS: '1000',
      DISCOVERY_HEARTBEAT_MS: '200',
    };
    k1 = await kitchenInstance('kitchen-1', registryMode);
    k2 = await kitchenInstance('kitchen-2', registryMode);
    order = await orderService(registryMode);
  });

  it('self-registers each instance with its URL once ready', async () => {
    const instances = await order.context.discovery.instances('kitchen');
    expect(instances.map((i) => [i.instanceId, i.url])).toEqual([
      ['kitchen-1', k1.url],
      ['kitchen-2', k2.url],
    ]);
  });

  it('balances client calls over the healthy instances (client-side discovery)', async () => {
    const client = order.context.httpClient('kitchen');
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push((await client.get<{ instance: string }>('/whoami')).body.instance);
    expect(seen.sort()).toEqual(['kitchen-1', 'kitchen-1', 'kitchen-2', 'kitchen-2']);
  });

  it('keeps a lease alive by heartbeat beyond its time to live', async () => {
    await new Promise((r) => setTimeout(r, 1_300));
    const registry = new PostgresServiceRegistry(order.context.pool!, 0);
    expect((await registry.instances('kitchen')).map((i) => i.instanceId)).toEqual([
      'kitchen-1',
      'kitchen-2',
    ]);
  });

  it('deregisters on shutdown, so clients stop choosing the instance', async () => {
    await k2.stop();
    const registry = new PostgresServiceRegistry(order.context.pool!, 0);
    expect((await registry.instances('kitchen')).map((i) => i.instanceId)).toEqual(['kitchen-1']);
  });

  it('stops offering an instance whose lease ran out without heartbeats', async () => {
    const pool = new pg.Pool({ connectionString: db().url, max: 1 });
    try {
      const registry = new PostgresServiceRegistry(pool, 0);
      await registry.register(
        { service: 'delivery', instanceId: 'd-1', url: 'http://127.0.0.1:1', metadata: {} },
        300,
      );
      expect(await registry.instances('delivery')).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 400));
      expect(await registry.instances('delivery')).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it('answers 503 unavailable when a service has no healthy instance', async () => {
    const error = await order.context
      .httpClient('accounting')
      .get('/accounts/1')
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('NoInstanceError');
  });
});

describe('server-side discovery by DNS names, and static lists', () => {
  it('calls a service through its DNS name from the template (as a Kubernetes Service)', async () => {
    const kitchen = await kitchenInstance('kitchen-dns', { DISCOVERY_MODE: 'dns' });
    const port = new URL(kitchen.url).port;
    const order = await orderService({
      DISCOVERY_MODE: 'dns',
      DISCOVERY_DNS_TEMPLATE: `http://{service}:${port}`,
    });
    expect(order.context.discovery).toBeInstanceOf(DnsDiscovery);
    const res = await order.context.httpClient('localhost').get<{ instance: string }>('/whoami');
    expect(res.body.instance).toBe('kitchen-dns');
  });

  it('reads a static list and refuses a malformed one naming DISCOVERY_STATIC', async () => {
    const discovery = new StaticDiscovery('kitchen=http://a:1,http://b:2; order=http://c:3');
    expect((await discovery.instances('kitchen')).map((i) => i.url)).toEqual(['http://a:1', 'http://b:2']);
    expect(await discovery.instances('billing')).toEqual([]);
    expect(() => new StaticDiscovery('kitchen')).toThrow(/DISCOVERY_STATIC/);
  });
});
