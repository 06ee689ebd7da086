import * as grpc from '@grpc/grpc-js';
import { context, trace } from '@opentelemetry/api';
import { BrokenCircuitError } from 'cockatiel';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AccessTokenVerifier } from '../auth/access-token.verifier.js';
import { withRequestScope } from '../context/request-context.js';
import { PROBLEMS, ProblemError } from '../errors/problem.js';
import { createLogger } from '../logging/logger.js';
import { loadOrderService } from '../test-support/orders.grpc.js';
import { InMemorySpanExporter, LogCapture, TestIssuer } from '../testing/index.js';
import { Tracing } from '../tracing/tracing.js';
import { GrpcClient, type GrpcClientOptions } from './grpc-client.js';
import { GrpcServer } from './grpc-server.js';
import { UpstreamError } from './upstream.error.js';

const OrderService = loadOrderService();
const spans = new InMemorySpanExporter();
const tracing = new Tracing({ service: 'grpc-test', instance: 'i1', exporter: spans });
const logger = createLogger({ service: 'grpc-test', instance: 'i1', destination: new LogCapture() });
let issuer: TestIssuer;
let server: GrpcServer;
let failures: grpc.status[] = [];
let calls = 0;
const clients: GrpcClient[] = [];

beforeAll(async () => {
  issuer = await TestIssuer.start();
  server = new GrpcServer({
    host: '127.0.0.1',
    port: 0,
    tracing,
    logger,
    verifier: new AccessTokenVerifier({
      jwksUrl: issuer.jwksUrl,
      issuer: issuer.issuer,
      audience: issuer.audience,
    }),
    services: [
      {
        definition: OrderService.service,
        handlers: {
          GetOrder: async (request: { orderId: string }, call) => {
            calls++;
            const code = failures.shift();
            if (code !== undefined) throw Object.assign(new Error('injected'), { code });
            if (request.orderId === 'missing') throw new ProblemError(PROBLEMS.notFound, 'no such order');
            return {
              orderId: request.orderId,
              state: 'APPROVED',
              caller: call.principal?.subject ?? '',
              traceId: trace.getActiveSpan()?.spanContext().traceId ?? '',
            };
          },
          CreateOrder: async () => {
            calls++;
            const code = failures.shift();
            if (code !== undefined) throw Object.assign(new Error('injected'), { code });
            return { orderId: 'o-new', state: 'APPROVAL_PENDING' };
          },
        },
      },
    ],
  });
  await server.start();
});
beforeEach(() => {
  failures = [];
  calls = 0;
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.stop();
  await issuer.close();
});

function client(options: Partial<GrpcClientOptions> = {}) {
  const c = new GrpcClient({
    target: 'order-service',
    address: `127.0.0.1:${server.port}`,
    service: OrderService,
    tracing,
    retry: { initialDelayMs: 10, maxDelayMs: 20 },
    ...options,
  });
  clients.push(c);
  return c;
}

async function asCaller<T>(work: () => Promise<T>): Promise<T> {
  const token = await issuer.token({ subject: 'courier-3' });
  return context.with(withRequestScope({ accessToken: token, correlationId: 'c-1' }), work);
}

describe('gRPC client and server', () => {
  it('carries trace context and the caller token in metadata', async () => {
    const parent = tracing.tracer.startSpan('caller');
    const reply = await context.with(trace.setSpan(context.active(), parent), () =>
      asCaller(() =>
        client().unary<{ caller: string; traceId: string }>(
          'GetOrder',
          { orderId: 'o-1' },
          { idempotent: true },
        ),
      ),
    );
    parent.end();
    expect(reply.caller).toBe('courier-3');
    expect(reply.traceId).toBe(parent.spanContext().traceId);
    const serverSpan = spans.getFinishedSpans().find((s) => s.name === '/ftgo.order.OrderService/GetOrder')!;
    const clientSpan = spans.getFinishedSpans().find((s) => s.name === 'order-service/GetOrder')!;
    expect(clientSpan.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(serverSpan.parentSpanContext?.spanId).toBe(clientSpan.spanContext().spanId);
  });

  it('refuses a call without a token as UNAUTHENTICATED', async () => {
    const error = await client()
      .unary('GetOrder', { orderId: 'o-1' })
      .catch((e: unknown) => e);
    expect((error as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('maps a ProblemError to its status and passes it through without retrying', async () => {
    const error = await asCaller(() =>
      client().unary('GetOrder', { orderId: 'missing' }, { idempotent: true }),
    ).catch((e: unknown) => e);
    expect((error as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
    expect(calls).toBe(1);
  });

  it('retries UNAVAILABLE for idempotent calls only', async () => {
    failures = [grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE];
    const reply = await asCaller(() =>
      client().unary<{ state: string }>('GetOrder', { orderId: 'o-2' }, { idempotent: true }),
    );
    expect(reply.state).toBe('APPROVED');
    expect(calls).toBe(3);
    calls = 0;
    failures = [grpc.status.UNAVAILABLE];
    const error = await asCaller(() => client().unary('CreateOrder', { consumerId: 'c' })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect(calls).toBe(1);
  });

  it('opens the breaker after consecutive failures and stops calling', async () => {
    const c = client({
      retry: false,
      breaker: { consecutiveFailures: 2, halfOpenAfterMs: 60_000, minimumRps: 1000 },
    });
    failures = [grpc.status.UNAVAILABLE, grpc.status.INTERNAL];
    await asCaller(() => c.unary('GetOrder', { orderId: 'x' })).catch(() => {});
    await asCaller(() => c.unary('GetOrder', { orderId: 'x' })).catch(() => {});
    const error = await asCaller(() => c.unary('GetOrder', { orderId: 'x' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(calls).toBe(2);
  });

  it('gives up at the deadline', async () => {
    const c = client({ address: '127.0.0.1:1', timeoutMs: 150, retry: false });
    const started = Date.now();
    const error = await c.unary('GetOrder', { orderId: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
