import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BrokenCircuitError, BulkheadRejectedError } from 'cockatiel';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../logging/logger.js';
import { Metrics } from '../metrics/metrics.js';
import { LogCapture } from '../testing/index.js';
import { HttpClient, type HttpClientOptions } from './http-client.js';
import { UpstreamError } from './upstream.error.js';

/** A real HTTP server that fails on demand: answers from a script, then from `mode`. */
class FlakyServer {
  mode: 'ok' | 'fail' | 'slow' | 'reset' | 'missing' = 'ok';
  script: Array<FlakyServer['mode']> = [];
  hits = 0;
  inFlight = 0;
  maxInFlight = 0;
  readonly #server: Server = createServer((req, res) => {
    this.hits++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    const mode = this.script.shift() ?? this.mode;
    if (mode === 'reset') return req.socket.destroy();
    if (mode === 'fail')
      return res.writeHead(503, { 'content-type': 'application/json' }).end('{"down":true}');
    if (mode === 'missing')
      return res.writeHead(404, { 'content-type': 'application/json' }).end('{"missing":true}');
    const delay = mode === 'slow' ? 300 : 0;
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'), delay);
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.mode = 'ok';
    this.script = [];
    this.hits = 0;
    this.maxInFlight = 0;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

const server = new FlakyServer();
let url: string;
const clients: HttpClient[] = [];

beforeAll(async () => {
  url = await server.start();
});
beforeEach(() => server.reset());
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server.close();
});

function client(options: Partial<HttpClientOptions> = {}) {
  const c = new HttpClient({ target: url, retry: { initialDelayMs: 10, maxDelayMs: 20 }, ...options });
  clients.push(c);
  return c;
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );

describe('HttpClient against a server that fails on demand', () => {
  it('retries an idempotent GET through transient failures', async () => {
    server.script = ['fail', 'reset'];
    const res = await client().get<{ ok: boolean }>('/thing');
    expect(res.body).toEqual({ ok: true });
    expect(server.hits).toBe(3);
  });

  it('does not retry a POST, and says which upstream failed', async () => {
    server.script = ['fail'];
    const error = await failure(client().post('/orders', { a: 1 }));
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).status).toBe(503);
    expect(server.hits).toBe(1);
  });

  it('retries a POST the caller marks idempotent (an idempotency key)', async () => {
    server.script = ['fail'];
    const res = await client().post(
      '/orders',
      { a: 1 },
      { idempotent: true, headers: { 'idempotency-key': 'k1' } },
    );
    expect(res.status).toBe(200);
    expect(server.hits).toBe(2);
  });

  it('returns 4xx answers as they are, without retrying', async () => {
    server.mode = 'missing';
    const res = await client().get('/nothing');
    expect(res.status).toBe(404);
    expect(server.hits).toBe(1);
  });

  it('times an attempt out', async () => {
    server.mode = 'slow';
    const started = Date.now();
    const error = await failure(client({ timeoutMs: 80, retry: false }).get('/slow'));
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as Error).message).toContain('timed out after 80 ms');
    expect(Date.now() - started).toBeLessThan(250);
  });

  it('opens the breaker on consecutive failures, sheds calls, probes half-open and closes on success', async () => {
    const logs = new LogCapture();
    const metrics = new Metrics({}, { processMetrics: false });
    const c = client({
      target: url,
      retry: false,
      breaker: { consecutiveFailures: 3, halfOpenAfterMs: 150, minimumRps: 1000 },
      metrics,
      logger: createLogger({ service: 't', instance: 'i', destination: logs }),
    });
    server.mode = 'fail';
    for (let i = 0; i < 3; i++) expect(await failure(c.get('/x'))).toBeInstanceOf(UpstreamError);
    expect(await failure(c.get('/x'))).toBeInstanceOf(BrokenCircuitError);
    expect(server.hits).toBe(3);
    expect(await metrics.scrape()).toMatch(new RegExp(`ferry_circuit_breaker_state\\{target="${url}"\\} 2`));
    expect(logs.find(/is open$/)[0]).toMatchObject({ level: 'warn', breaker: 'open', target: url });

    server.mode = 'ok';
    await new Promise((r) => setTimeout(r, 200));
    expect((await c.get('/x')).status).toBe(200);
    expect(server.hits).toBe(4);
    expect(await metrics.scrape()).toMatch(new RegExp(`ferry_circuit_breaker_state\\{target="${url}"\\} 0`));
    expect(logs.find(/is half-open$/)).toHaveLength(1);
    expect(logs.find(/is closed$/)[0]).toMatchObject({ level: 'info' });
  });

  it('re-opens when the half-open probe fails', async () => {
    const c = client({
      retry: false,
      breaker: { consecutiveFailures: 2, halfOpenAfterMs: 100, minimumRps: 1000 },
    });
    server.mode = 'fail';
    await failure(c.get('/x'));
    await failure(c.get('/x'));
    await new Promise((r) => setTimeout(r, 130));
    expect(await failure(c.get('/x'))).toBeInstanceOf(UpstreamError);
    expect(await failure(c.get('/x'))).toBeInstanceOf(BrokenCircuitError);
    expect(server.hits).toBe(3);
  });

  it('opens the breaker on a failure ratio even without a run of failures', async () => {
    const c = client({
      retry: false,
      breaker: {
        consecutiveFailures: 1000,
        failureRatio: 0.4,
        samplingMs: 2_000,
        minimumRps: 1,
        halfOpenAfterMs: 10_000,
      },
    });
    server.script = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 'fail' : 'ok'));
    let broken = false;
    for (let i = 0; i < 40 && !broken; i++) {
      const outcome = await c.get('/x').then(
        () => 'ok',
        (e: unknown) => e,
      );
      broken = outcome instanceof BrokenCircuitError;
    }
    expect(broken).toBe(true);
  });

  it('limits concurrency with the bulkhead and refuses the overflow', async () => {
    server.mode = 'slow';
    const c = client({ retry: false, bulkhead: { maxConcurrent: 2, maxQueue: 1 } });
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () =>
        c.get('/slow').then(
          () => 'ok',
          (e: unknown) => (e instanceof BulkheadRejectedError ? 'rejected' : String(e)),
        ),
      ),
    );
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(3);
    expect(outcomes.filter((o) => o === 'rejected')).toHaveLength(2);
    expect(server.maxInFlight).toBe(2);
  });
});
