import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AccessTokenVerifier, createService, defineRoute } from '@ferry/service';
import { TestIssuer } from '@ferry/service/testing';
import autocannon from 'autocannon';
import fastify from 'fastify';
import * as hdr from 'hdr-histogram-js';
import { Agent, request } from 'undici';
import { z } from 'zod';
import { hostMetrics, probeHost } from './lib/host-probe.js';

/*
 * npm run bench:service [-- --quick]
 *
 * Throughput of one hello route served by the Ferry runtime (request log line, RED metrics,
 * tracing with OTLP export, access-token check: all on) against the same route on bare Fastify,
 * in the same run, each server alone in a child process and autocannon in this one, all on
 * 127.0.0.1; beside them, for comparison only, the runtime with tracing off. Then open-loop latency of the runtime at half its throughput (requests sent on a
 * fixed schedule, latency measured from the scheduled time into an HDR histogram), and the cost
 * of one JWT verification. Writes bench/results/service.json.
 */

/** The server side, in a child process: reports its port to the parent over IPC. */
async function serve(kind: 'bare' | 'runtime'): Promise<void> {
  if (kind === 'bare') {
    const app = fastify();
    app.get('/hello', async () => ({ hello: 'world' }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    process.send?.({ port: (app.server.address() as AddressInfo).port });
  } else {
    const service = await createService({
      name: 'bench',
      configLayers: {
        env: {
          HOST: '127.0.0.1',
          PORT: '0',
          AUTH_MODE: 'jwt',
          AUTH_JWKS_URL: process.env.BENCH_JWKS_URL,
          AUTH_ISSUER: process.env.BENCH_ISSUER,
          AUTH_AUDIENCE: process.env.BENCH_AUDIENCE,
          OTEL_EXPORTER_OTLP_ENDPOINT: process.env.BENCH_OTLP_URL,
          DISCOVERY_MODE: 'dns',
          // Settings to compare against the defaults (ablation): BENCH_RUNTIME_ENV='{"TRACING_ENABLED":"false"}'.
          ...(process.env.BENCH_RUNTIME_ENV ? JSON.parse(process.env.BENCH_RUNTIME_ENV) : {}),
        },
      },
      // No logDestination: the default, standard output, which this child has on /dev/null.
      routes: [
        defineRoute({
          method: 'GET',
          url: '/hello',
          schema: { response: { 200: z.object({ hello: z.string() }) } },
          handler: async (request) => ({ hello: request.principal?.subject ?? 'world' }),
        }),
      ],
    });
    await service.start();
    process.send?.({ port: Number(new URL(service.url).port) });
  }
  // 'cpu' answers the CPU time used since the last ask; anything else stops the server.
  let since = process.cpuUsage();
  process.on('message', (message) => {
    if (message !== 'cpu') process.exit(0);
    const used = process.cpuUsage(since);
    since = process.cpuUsage();
    process.send?.({ cpuUs: used.user + used.system });
  });
}

interface Child {
  readonly url: string;
  /** CPU microseconds the server used since the last call. */
  cpu(): Promise<number>;
  stop(): Promise<void>;
}

async function startChild(kind: 'bare' | 'runtime', env: Record<string, string>): Promise<Child> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${kind} server exited ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    cpu: () =>
      new Promise<number>((resolve) => {
        child.once('message', (m) => resolve((m as { cpuUs: number }).cpuUs));
        child.send('cpu');
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send('stop');
      }),
  };
}

function cannon(url: string, seconds: number, headers: Record<string, string>): Promise<autocannon.Result> {
  return autocannon({ url: `${url}/hello`, connections: 64, pipelining: 1, duration: seconds, headers });
}

/**
 * Sends `rate` requests a second on a fixed schedule, whatever the answers do (open loop): every
 * millisecond it sends the requests that have come due; each latency runs from the request's
 * scheduled time, so a stall is charged to every request it delayed (no coordinated omission).
 */
async function openLoop(url: string, rate: number, seconds: number, headers: Record<string, string>) {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const agent = new Agent({ connections: 128, pipelining: 1 });
  const intervalNs = 1e9 / rate;
  const total = Math.floor(rate * seconds);
  const start = process.hrtime.bigint();
  let errors = 0;
  let sent = 0;
  const inflight: Promise<void>[] = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(Number(process.hrtime.bigint() - start) / intervalNs) + 1);
    for (; sent < due; sent++) {
      const scheduled = start + BigInt(Math.round(sent * intervalNs));
      inflight.push(
        request(`${url}/hello`, { headers, dispatcher: agent })
          .then(async (res) => {
            await res.body.dump();
            if (res.statusCode !== 200) errors++;
          })
          .catch(() => {
            errors++;
          })
          .finally(() => {
            histogram.recordValue(Math.max(1, Number(process.hrtime.bigint() - scheduled) / 1000));
          }),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  await agent.close();
  const ms = (p: number) => Math.round(histogram.getValueAtPercentile(p) / 10) / 100;
  return {
    rate,
    requests: total,
    errors,
    p50: ms(50),
    p90: ms(90),
    p99: ms(99),
    p999: ms(99.9),
    max: ms(100),
  };
}

/** Mean time of one verification: signature and claims (`verifyUncached`), and a repeated token (`verify`). */
async function jwtVerifyMicros(
  issuer: TestIssuer,
  iterations: number,
): Promise<{ full: number; cached: number }> {
  const verifier = new AccessTokenVerifier({
    jwksUrl: issuer.jwksUrl,
    issuer: issuer.issuer,
    audience: issuer.audience,
  });
  const token = await issuer.token({ subject: 'bench-user', roles: ['consumer'] });
  const time = async (fn: () => Promise<unknown>, n: number) => {
    for (let i = 0; i < Math.min(200, n); i++) await fn();
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    return Math.round(Number(process.hrtime.bigint() - started) / 100 / n) / 10;
  };
  return {
    full: await time(() => verifier.verifyUncached(token), iterations),
    cached: await time(() => verifier.verify(token), iterations * 10),
  };
}

/** A collector stand-in: takes OTLP/HTTP posts and drops them, counting spans' batches. */
async function otlpSink(): Promise<{ url: string; batches: () => number; close: () => void }> {
  let batches = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      batches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    batches: () => batches,
    close: () => server.close(),
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  // Short segments, alternating between the two servers, so that a burst of load from elsewhere
  // on the machine falls on both alike; the ratio is the median of the paired segments.
  const seconds = quick ? 2 : 5;
  const warmup = quick ? 1 : 3;
  const rounds = quick ? 5 : 9;
  const began = Date.now();
  const probeAtStart = probeHost();
  const issuer = await TestIssuer.start({ alg: 'ES256' });
  const sink = await otlpSink();
  const token = await issuer.token({ subject: 'bench-user', roles: ['consumer'], expiresIn: 3600 });
  const headers = { authorization: `Bearer ${token}` };
  const env = {
    BENCH_JWKS_URL: issuer.jwksUrl,
    BENCH_ISSUER: issuer.issuer,
    BENCH_AUDIENCE: issuer.audience,
    BENCH_OTLP_URL: sink.url,
  };

  const jwt = await jwtVerifyMicros(issuer, quick ? 2_000 : 10_000);

  // 'untraced' is the runtime with TRACING_ENABLED=false: not a target, but it shows in every run
  // what tracing costs, the one feature whose price the 0.6 target turns on (decision 0111).
  const kinds = ['bare', 'runtime', 'untraced'] as const;
  type Kind = (typeof kinds)[number];
  const children: Record<Kind, Child> = {
    bare: await startChild('bare', env),
    runtime: await startChild('runtime', env),
    untraced: await startChild('runtime', {
      ...env,
      BENCH_RUNTIME_ENV: JSON.stringify({ TRACING_ENABLED: 'false' }),
    }),
  };
  for (const kind of kinds) await cannon(children[kind].url, warmup, headers);
  const rates: Record<Kind, number[]> = { bare: [], runtime: [], untraced: [] };
  const non2xx: Record<Kind, number> = { bare: 0, runtime: 0, untraced: 0 };
  const cpuPerRequest: Record<Kind, number[]> = { bare: [], runtime: [], untraced: [] };
  const ratios: number[] = [];
  const untracedRatios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const kind of round % 2 === 0 ? kinds : [...kinds].reverse()) {
      const child = children[kind];
      await child.cpu();
      const result = await cannon(child.url, seconds, headers);
      cpuPerRequest[kind].push(
        Math.round(((await child.cpu()) / Math.max(1, result.requests.total)) * 10) / 10,
      );
      rates[kind].push(Math.round(result.requests.average));
      non2xx[kind] += result.non2xx + result.errors;
    }
    ratios.push(rates.runtime.at(-1)! / rates.bare.at(-1)!);
    untracedRatios.push(rates.untraced.at(-1)! / rates.bare.at(-1)!);
  }
  await children.bare.stop();
  await children.untraced.stop();
  const runtimeRate = median(rates.runtime);
  const bareRate = median(rates.bare);

  const latency = await openLoop(
    children.runtime.url,
    Math.max(100, Math.round(runtimeRate / 2)),
    quick ? 4 : 10,
    headers,
  );
  await children.runtime.stop();
  sink.close();
  await issuer.close();

  const results = {
    runtime_req_per_s: runtimeRate,
    bare_fastify_req_per_s: bareRate,
    runtime_to_bare_ratio: Math.round(median(ratios) * 1000) / 1000,
    runtime_cpu_us_per_req: median(cpuPerRequest.runtime),
    bare_cpu_us_per_req: median(cpuPerRequest.bare),
    runtime_untraced_req_per_s: median(rates.untraced),
    runtime_untraced_to_bare_ratio: Math.round(median(untracedRatios) * 1000) / 1000,
    runtime_untraced_cpu_us_per_req: median(cpuPerRequest.untraced),
    load_average_1m: Math.round(loadavg()[0]! * 100) / 100,
    jwt_verify_us: jwt.full,
    jwt_verify_cached_us: jwt.cached,
    jwt_algorithm: 'ES256',
    runtime_open_loop_rate_per_s: latency.rate,
    runtime_open_loop_p50_ms: latency.p50,
    runtime_open_loop_p90_ms: latency.p90,
    runtime_open_loop_p99_ms: latency.p99,
    runtime_open_loop_p999_ms: latency.p999,
    runtime_open_loop_max_ms: latency.max,
    runtime_open_loop_errors: latency.errors,
    runtime_non_2xx: non2xx.runtime,
    runtime_untraced_non_2xx: non2xx.untraced,
    bare_non_2xx: non2xx.bare,
    otlp_batches_received: sink.batches(),
    connections: 64,
    seconds_per_measurement: seconds,
    rounds,
    quick,
    node: process.version,
    ...hostMetrics(probeHost(probeAtStart)),
    duration_s: Math.round((Date.now() - began) / 100) / 10,
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/service.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  console.log('\nFerry service runtime benchmark (127.0.0.1, GET /hello)\n');
  console.table({
    'runtime (log, metrics, tracing+OTLP, JWT)': {
      'req/s': runtimeRate,
      'CPU us/req': results.runtime_cpu_us_per_req,
      rounds: rates.runtime.join(' / '),
    },
    'runtime, tracing off (for comparison)': {
      'req/s': results.runtime_untraced_req_per_s,
      'CPU us/req': results.runtime_untraced_cpu_us_per_req,
      rounds: rates.untraced.join(' / '),
    },
    'bare Fastify': {
      'req/s': bareRate,
      'CPU us/req': results.bare_cpu_us_per_req,
      rounds: rates.bare.join(' / '),
    },
  });
  console.table({
    [`runtime open loop @ ${latency.rate}/s`]: {
      'p50 ms': latency.p50,
      'p90 ms': latency.p90,
      'p99 ms': latency.p99,
      'p99.9 ms': latency.p999,
      errors: latency.errors,
    },
  });
  console.log(
    `runtime / bare = ${results.runtime_to_bare_ratio} (target >= 0.6; tracing off: ${results.runtime_untraced_to_bare_ratio}); JWT verify (ES256) = ${jwt.full} us, repeated token ${jwt.cached} us`,
  );
  console.log(`wrote bench/results/service.json in ${results.duration_s} s`);
}

const role = process.argv.includes('--serve') ? process.argv[process.argv.indexOf('--serve') + 1] : undefined;
if (role) await serve(role as 'bare' | 'runtime');
else await main();
