/**
 * How fast this machine runs a fixed piece of JavaScript right now. On a shared virtual machine
 * the host can lend the CPU elsewhere, and every figure of a bench then falls (the outbox ratio
 * among them, decision 0005's sixth addendum). Benches time the same loop several times at their
 * start and at their end and record the fastest, the slowest and their quotient, so that a run
 * on a disturbed host shows as one beside its figures.
 */
export interface HostProbe {
  /** Milliseconds per loop: the fastest and slowest of the timings so far. */
  readonly minMs: number;
  readonly maxMs: number;
}

/** The loops' results, kept so that no engine drops them as dead code. */
let _sink = 0;

/** Times the loop `times` times and merges the timings into `previous`. */
export function probeHost(previous?: HostProbe, times = 5): HostProbe {
  let minMs = previous?.minMs ?? Number.POSITIVE_INFINITY;
  let maxMs = previous?.maxMs ?? 0;
  // One untimed round first: the loop's first run is not yet optimised.
  for (let round = -1; round < times; round++) {
    const started = performance.now();
    let x = 0;
    for (let i = 0; i < 20_000_000; i++) x += i % 7;
    _sink += x;
    const ms = performance.now() - started;
    if (round < 0) continue;
    minMs = Math.min(minMs, ms);
    maxMs = Math.max(maxMs, ms);
  }
  return { minMs, maxMs };
}

/** The probe as bench metrics: `host_probe_min_ms`, `host_probe_max_ms`, `host_probe_spread`. */
export function hostMetrics(probe: HostProbe): Record<string, number> {
  return {
    host_probe_min_ms: Math.round(probe.minMs * 10) / 10,
    host_probe_max_ms: Math.round(probe.maxMs * 10) / 10,
    host_probe_spread: Math.round((probe.maxMs / probe.minMs) * 100) / 100,
  };
}
