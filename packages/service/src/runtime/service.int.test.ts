import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { currentCorrelationId } from '../context/request-context.js';
import { lagCheck } from '../health/health-check.js';
import { defineRoute } from '../http/route.js';
import { call } from '../test-support/http.js';
import { testSettings } from '../test-support/sample.service.js';
import { LogCapture } from '../testing/index.js';
import type { Component } from './component.js';
import { createService } from './create-service.js';
import type { Service } from './service.js';

const services: Service[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.stop()));
});

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

async function build(extra: Parameters<typeof createService>[0] extends infer D ? Partial<D> : never = {}) {
  const logs = new LogCapture();
  const service = await createService({
    name: 'lifecycle',
    configLayers: { env: testSettings({ AUTH_MODE: 'none' }) },
    logDestination: logs,
    ...extra,
  });
  services.push(service);
  return { service, logs };
}

describe('lifecycle and readiness', () => {
  it('answers live but not ready while a component is starting, then ready', async () => {
    const starting = gate();
    const slow: Component = {
      name: 'slow',
      start: () => starting.opened,
      stop: async () => {},
      ready: () => true,
    };
    const { service } = await build({ components: [slow] });
    const started = service.start();
    await waitUntil(() => service.state === 'starting' && hasUrl(service));
    expect((await call(`${service.url}/health/live`)).status).toBe(200);
    const notYet = await call(`${service.url}/health/ready`);
    expect(notYet.status).toBe(503);
    expect(notYet.body).toMatchObject({ status: 'DOWN', state: 'starting' });
    starting.open();
    await started;
    const ready = await call(`${service.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.body.checks.slow.status).toBe('UP');
  });

  it('is not ready while a check fails, naming the check and its error', async () => {
    let healthy = true;
    let lag = 2;
    const { service } = await build({
      checks: [
        {
          name: 'relay',
          check: () => {
            if (!healthy) throw new Error('relay stopped');
            return true;
          },
        },
        lagCheck('relay-lag', () => lag, 30),
      ],
    });
    await service.start();
    expect((await call(`${service.url}/health/ready`)).status).toBe(200);
    lag = 900;
    const lagging = await call(`${service.url}/health/ready`);
    expect(lagging.status).toBe(503);
    expect(lagging.body.checks['relay-lag']).toMatchObject({ status: 'DOWN', detail: { lag: 900, max: 30 } });
    expect(lagging.body.checks.relay.status).toBe('UP');
    healthy = false;
    const res = await call(`${service.url}/health/ready`);
    expect(res.body.checks.relay).toMatchObject({ status: 'DOWN', error: 'relay stopped' });
  });

  it('shuts down gracefully: readiness goes false, in-flight requests finish, then components stop', async () => {
    const inHandler = gate();
    const release = gate();
    const order: string[] = [];
    const component: Component = {
      name: 'worker',
      start: async () => {},
      stop: async () => {
        order.push('component stopped');
      },
    };
    const { service } = await build({
      components: [component],
      configLayers: { env: testSettings({ AUTH_MODE: 'none', SHUTDOWN_DELAY_MS: '150' }) },
      routes: [
        defineRoute({
          method: 'GET',
          url: '/slow',
          handler: async () => {
            inHandler.open();
            await release.opened;
            order.push('request finished');
            return { done: true };
          },
        }),
      ],
    });
    await service.start();
    const slow = call(`${service.url}/slow`);
    await inHandler.opened;
    const stopped = service.stop();
    expect(service.state).toBe('stopping');
    const ready = await call(`${service.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body.state).toBe('stopping');
    release.open();
    expect((await slow).body).toEqual({ done: true });
    await stopped;
    expect(order).toEqual(['request finished', 'component stopped']);
    expect(service.state).toBe('stopped');
  });

  it('stops what it started when a component fails to start', async () => {
    const stopped: string[] = [];
    const ok: Component = { name: 'ok', start: async () => {}, stop: async () => void stopped.push('ok') };
    const bad: Component = {
      name: 'bad',
      start: async () => {
        throw new Error('broker unreachable');
      },
      stop: async () => void stopped.push('bad'),
    };
    const { service } = await build({ components: [ok, bad] });
    await expect(service.start()).rejects.toThrow('broker unreachable');
    expect(stopped).toEqual(['ok']);
    expect(service.state).toBe('stopped');
  });
});

describe('observability of HTTP requests', () => {
  it('exposes RED metrics by route template, process figures and custom gauges at /metrics', async () => {
    const { service } = await build({
      routes: [
        defineRoute({
          method: 'GET',
          url: '/items/:id',
          schema: { params: z.object({ id: z.string() }) },
          handler: async ({ params }) => ({ id: params.id }),
        }),
      ],
    });
    service.context.metrics.registerGauge('ferry_relay_lag_seconds', 'Relay lag', async () => 4.5);
    await service.start();
    await call(`${service.url}/items/1`);
    await call(`${service.url}/items/2`);
    const text = (await call(`${service.url}/metrics`)).text;
    expect(text).toMatch(
      /http_requests_total\{method="GET",route="\/items\/:id",status_code="200",service="lifecycle"\} 2/,
    );
    expect(text).toMatch(/http_request_duration_seconds_count\{[^}]*route="\/items\/:id"[^}]*\} 2/);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toMatch(/ferry_relay_lag_seconds\{service="lifecycle"\} 4.5/);
  });

  it('logs one JSON line per request with service, instance, trace and correlation ids, secrets redacted', async () => {
    const { service, logs } = await build({
      routes: [
        defineRoute({
          method: 'GET',
          url: '/work',
          handler: async (request) => {
            request.log.info({ authorization: 'Bearer secret-token' }, 'doing work');
            return { ok: true };
          },
        }),
      ],
    });
    await service.start();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const res = await call(`${service.url}/work?access_token=abc123`, {
      headers: { traceparent, 'x-correlation-id': 'corr-42' },
    });
    expect(res.headers['x-correlation-id']).toBe('corr-42');
    const work = logs.find('doing work')[0]!;
    expect(work).toMatchObject({
      service: 'lifecycle',
      trace_id: '0af7651916cd43dd8448eb211c80319c',
      correlation_id: 'corr-42',
      authorization: '[redacted]',
    });
    expect(work.instance).toEqual(expect.any(String));
    const line = logs.find('request').find((l) => l.route === '/work')!;
    expect(line).toMatchObject({
      status: 200,
      correlation_id: 'corr-42',
      trace_id: '0af7651916cd43dd8448eb211c80319c',
    });
    expect(line.url).toBe('/work?access_token=%5Bredacted%5D');
    expect(JSON.stringify(logs.lines)).not.toContain('abc123');
    expect(JSON.stringify(logs.lines)).not.toContain('secret-token');
  });

  it('keeps the trace and correlation id in handlers of requests with a body', async () => {
    const { service } = await build({
      routes: [
        defineRoute({
          method: 'POST',
          url: '/echo',
          schema: { body: z.strictObject({ text: z.string() }) },
          handler: async ({ body }) => {
            await new Promise((r) => setTimeout(r, 5));
            return {
              text: body.text,
              correlationId: currentCorrelationId(),
              traceId: trace.getActiveSpan()?.spanContext().traceId,
            };
          },
        }),
      ],
    });
    await service.start();
    const res = await call(`${service.url}/echo`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-correlation-id': 'with-body',
        traceparent: '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01',
      },
      body: JSON.stringify({ text: 'x'.repeat(600_000) }),
    });
    expect({ ...res.body, text: res.body.text.length }).toEqual({
      text: 600_000,
      correlationId: 'with-body',
      traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    });
  });

  it('refuses a correlation id that could forge log lines and makes a new one', async () => {
    const { service } = await build();
    await service.start();
    for (const forged of ['id" level="fatal', 'a'.repeat(200)]) {
      const res = await call(`${service.url}/health/live`, { headers: { 'x-correlation-id': forged } });
      expect(res.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('publishes OpenAPI from the zod schemas at /docs/json and the UI at /docs', async () => {
    const { service } = await build({
      routes: [
        defineRoute({
          method: 'POST',
          url: '/tickets/:ticketId/accept',
          summary: 'Accepts a ticket',
          schema: {
            params: z.object({ ticketId: z.uuid() }),
            body: z.strictObject({ readyBy: z.iso.datetime() }),
            response: { 200: z.object({ state: z.enum(['ACCEPTED']) }) },
          },
          handler: async () => ({ state: 'ACCEPTED' as const }),
        }),
      ],
    });
    await service.start();
    const doc = (await call(`${service.url}/docs/json`)).body;
    const op = doc.paths['/tickets/{ticketId}/accept'].post;
    expect(op.summary).toBe('Accepts a ticket');
    expect(op.parameters[0]).toMatchObject({ in: 'path', name: 'ticketId', required: true });
    expect(op.requestBody.content['application/json'].schema).toMatchObject({
      type: 'object',
      required: ['readyBy'],
      additionalProperties: false,
    });
    expect(op.responses['200'].content['application/json'].schema.properties.state.enum).toEqual([
      'ACCEPTED',
    ]);
    expect(doc.components.securitySchemes.bearer.scheme).toBe('bearer');
    const ui = await call(`${service.url}/docs/`);
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('<html');
  });

  it('refuses a reply that breaks the route response schema as an internal error', async () => {
    const { service } = await build({
      routes: [
        defineRoute({
          method: 'GET',
          url: '/broken',
          schema: { response: { 200: z.object({ total: z.string() }) } },
          handler: async () => ({ total: 12 }) as unknown as { total: string },
        }),
      ],
    });
    await service.start();
    const res = await call(`${service.url}/broken`);
    expect(res.status).toBe(500);
    expect(res.body.type).toBe('urn:ferry:problem:internal');
    const tracked = await service.context.exceptions.store.list();
    expect(tracked[0]?.errorType).toBe('ResponseContractError');
  });
});

function hasUrl(service: Service): boolean {
  try {
    return Boolean(service.url);
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
