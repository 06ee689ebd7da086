import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  defineEvent,
  event,
  inMemoryTransaction,
  MemoryBroker,
  MemoryDeadLetterStore,
  MemoryInbox,
  MemoryOutbox,
  Messaging,
} from '@ferry/core';
import { SpanKind, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import { currentCorrelationId, currentPrincipal } from '../context/request-context.js';
import { defineRoute } from '../http/route.js';
import { handle } from '../runtime/consumers.js';
import { createService } from '../runtime/create-service.js';
import type { Service } from '../runtime/service.js';
import { bearer, call } from '../test-support/http.js';
import { testSettings } from '../test-support/sample.service.js';
import { InMemorySpanExporter, LogCapture, TestIssuer } from '../testing/index.js';
import { currentSendContext } from './message-tracing.js';

const OrderCreated = defineEvent('OrderCreated', z.object({ orderId: z.string() }), 'Order');

const spans = new InMemorySpanExporter();
const broker = new MemoryBroker();
const outbox = new MemoryOutbox(broker);
const messaging = new Messaging(outbox);
let issuer: TestIssuer;
let order: Service;
let kitchen: Service;
const kitchenLogs = new LogCapture();
const handled: Array<{
  traceId: string | undefined;
  principal: Principal | undefined;
  correlationId: string | undefined;
}> = [];

beforeAll(async () => {
  issuer = await TestIssuer.start();
  kitchen = await createService({
    name: 'kitchen',
    configLayers: { env: testSettings(issuer.settings()) },
    spanExporter: spans,
    logDestination: kitchenLogs,
    routes: [
      defineRoute({
        method: 'GET',
        url: '/kitchen/ping',
        handler: async (request) => ({ caller: request.principal?.subject }),
      }),
    ],
    consumers: [
      {
        group: 'kitchen',
        broker,
        inbox: new MemoryInbox(),
        deadLetters: new MemoryDeadLetterStore(broker),
        handlers: [
          handle(OrderCreated, async ({ message }) => {
            handled.push({
              traceId: trace.getActiveSpan()?.spanContext().traceId,
              principal: currentPrincipal(),
              correlationId: currentCorrelationId(),
            });
            kitchen.logger.info({ orderId: message.payload.orderId }, 'ticket created');
          }),
        ],
      },
    ],
  });
  await kitchen.start();
  order = await createService({
    name: 'order',
    configLayers: { env: testSettings(issuer.settings()) },
    spanExporter: spans,
    logDestination: new LogCapture(),
    routes: (ctx) => {
      const kitchenClient = ctx.httpClient(kitchen.url);
      return [
        defineRoute({
          method: 'POST',
          url: '/orders/:orderId',
          schema: { params: z.object({ orderId: z.string() }) },
          handler: async ({ params }) => {
            const ping = await kitchenClient.get<{ caller: string }>('/kitchen/ping');
            await inMemoryTransaction((tx) =>
              messaging.publishEvents(
                tx,
                { type: 'Order', id: params.orderId },
                [event(OrderCreated, { orderId: params.orderId })],
                currentSendContext(),
              ),
            );
            return { kitchenSaw: ping.body.caller };
          },
        }),
      ];
    },
  });
  await order.start();
});

afterAll(async () => {
  await order?.stop();
  await kitchen?.stop();
  await issuer?.close();
});

describe('distributed tracing', () => {
  it('follows one request through HTTP, the outbox, the broker and a consumer, with the principal', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const token = await issuer.token({ subject: 'consumer-9', roles: ['consumer'] });
    const res = await call(`${order.url}/orders/o-1`, {
      method: 'POST',
      headers: {
        ...bearer(token),
        traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
        'x-correlation-id': 'saga-77',
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.kitchenSaw).toBe('consumer-9');
    await outbox.flushed();
    await waitFor(() => handled.length === 1);

    const all = spans.getFinishedSpans();
    const byName = (name: string, service: string) =>
      all.find((s) => s.name === name && s.resource.attributes['service.name'] === service)!;
    const orderServer = byName('POST /orders/:orderId', 'order');
    const client = byName('GET', 'order');
    const kitchenServer = byName('GET /kitchen/ping', 'kitchen');
    const consumer = byName('process Order', 'kitchen');
    for (const span of [orderServer, client, kitchenServer, consumer])
      expect(span.spanContext().traceId).toBe(traceId);
    expect(orderServer.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(client.kind).toBe(SpanKind.CLIENT);
    expect(client.parentSpanContext?.spanId).toBe(orderServer.spanContext().spanId);
    expect(kitchenServer.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    expect(consumer.parentSpanContext?.spanId).toBe(orderServer.spanContext().spanId);
    expect(consumer.attributes['ferry.message.type']).toBe('OrderCreated');

    expect(handled[0]).toMatchObject({ traceId, correlationId: 'saga-77' });
    expect(handled[0]!.principal).toMatchObject({ subject: 'consumer-9', roles: ['consumer'] });
    const published = outbox.published[0]!;
    expect(JSON.parse(published.headers.principal!)).toMatchObject({
      sub: 'consumer-9',
      roles: ['consumer'],
    });
    expect(kitchenLogs.find('ticket created')[0]).toMatchObject({
      trace_id: traceId,
      correlation_id: 'saga-77',
    });
  });

  it('counts the consumer outcomes in the consuming service metrics', async () => {
    const text = (await call(`${kitchen.url}/metrics`)).text;
    expect(text).toMatch(
      /ferry_consumer_messages_total\{group="kitchen",type="OrderCreated",outcome="handled",service="kitchen"\} 1/,
    );
    expect(text).toMatch(
      /ferry_consumer_handler_duration_seconds_count\{[^}]*group="kitchen",type="OrderCreated"\} 1/,
    );
  });

  it('exports spans by OTLP/HTTP when an endpoint is configured', async () => {
    const bodies: string[] = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        if (req.url === '/v1/traces') bodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = collector.address() as AddressInfo;
      const exporting = await createService({
        name: 'exporting',
        logDestination: new LogCapture(),
        configLayers: {
          env: testSettings({ AUTH_MODE: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` }),
        },
        routes: [defineRoute({ method: 'GET', url: '/traced', handler: async () => ({ ok: true }) })],
      });
      await exporting.start();
      await call(`${exporting.url}/traced`);
      await exporting.stop();
      const sent = bodies.join('\n');
      expect(sent).toContain('GET /traced');
      expect(sent).toContain('"exporting"');
    } finally {
      collector.close();
    }
  });

  it('starts a new trace when the caller sends none', async () => {
    const token = await issuer.token({ roles: ['consumer'] });
    spans.reset();
    await call(`${kitchen.url}/kitchen/ping`, { headers: bearer(token) });
    const server = spans.getFinishedSpans().find((s) => s.name === 'GET /kitchen/ping')!;
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.attributes['http.response.status_code']).toBe(200);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
