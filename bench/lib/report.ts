import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';

/** Whether `--quick` was passed: every bench then finishes in under 60 s. */
export const quick = process.argv.includes('--quick');

/** Writes bench/results/<name>.json (a flat object of metric → number) and prints a table. */
export async function report(
  name: string,
  metrics: Record<string, number>,
  notes: Record<string, string> = {},
): Promise<void> {
  const dir = resolve('bench/results');
  await mkdir(dir, { recursive: true });
  const rounded = Object.fromEntries(
    Object.entries(metrics).map(([k, v]) => [k, Number.isFinite(v) ? Math.round(v * 1000) / 1000 : v]),
  );
  await writeFile(resolve(dir, `${name}.json`), `${JSON.stringify(rounded, null, 2)}\n`);
  const width = Math.max(...Object.keys(rounded).map((k) => k.length));
  console.log(`\n${name}${quick ? ' (--quick)' : ''}`);
  console.log(`${'metric'.padEnd(width)}  ${'value'.padStart(12)}  note`);
  for (const [k, v] of Object.entries(rounded))
    console.log(`${k.padEnd(width)}  ${String(v).padStart(12)}  ${notes[k] ?? ''}`);
  console.log(`\nwritten to bench/results/${name}.json`);
}

/** Runs `work` from `concurrency` loops for `ms`; resolves to completed operations per second. */
export async function closedLoopRate(
  concurrency: number,
  ms: number,
  work: () => Promise<void>,
): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await work();
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

/**
 * Open-loop load: starts `work(scheduledAt)` every 1/rate seconds for `ms`, whether or not
 * earlier calls finished, so a slow system cannot slow the arrivals (no coordinated omission).
 * Latency is timed by the caller from `scheduledAt`.
 */
export async function openLoop(
  ratePerSecond: number,
  ms: number,
  work: (scheduledAt: number) => Promise<void>,
): Promise<void> {
  const interval = 1000 / ratePerSecond;
  const start = performance.now();
  const total = Math.floor((ms / 1000) * ratePerSecond);
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduledAt = start + i * interval;
    const wait = scheduledAt - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(work(scheduledAt));
  }
  await Promise.all(inFlight);
}
