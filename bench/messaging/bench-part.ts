/** What one part of the messaging bench measured: metric → number, and a note for some of them. */
export interface BenchPart {
  readonly metrics: Record<string, number>;
  readonly notes: Record<string, string>;
}

/** Merges parts in order into one report. */
export function mergeParts(parts: readonly BenchPart[]): BenchPart {
  return {
    metrics: Object.assign({}, ...parts.map((p) => p.metrics)),
    notes: Object.assign({}, ...parts.map((p) => p.notes)),
  };
}
