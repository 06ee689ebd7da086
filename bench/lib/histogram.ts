import * as hdr from 'hdr-histogram-js';

/** A latency histogram in microseconds (HDR, 3 significant digits); reports milliseconds. */
export class LatencyHistogram {
  readonly #h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });

  recordMs(ms: number): void {
    this.#h.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.#h.totalCount;
  }

  percentileMs(p: number): number {
    return this.#h.getValueAtPercentile(p) / 1000;
  }
}
