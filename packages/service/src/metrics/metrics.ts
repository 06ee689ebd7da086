import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Read a gauge's value at scrape time: a relay's lag, a queue's depth. */
export type GaugeCollector = () => number | Promise<number>;

/**
 * The service's Prometheus registry (one per service, not prom-client's global one) with
 * get-or-create accessors, so every part of Ferry can add its figures without coordinating.
 */
export class Metrics {
  readonly registry = new Registry();

  constructor(labels: Record<string, string>, options: { readonly processMetrics?: boolean } = {}) {
    this.registry.setDefaultLabels(labels);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The counter `name`, created on first use. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.#getOrCreate(name, () => new Counter({ name, help, labelNames, registers: [this.registry] }));
  }

  /** The gauge `name`, created on first use. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.#getOrCreate(name, () => new Gauge({ name, help, labelNames, registers: [this.registry] }));
  }

  /** The histogram `name` (seconds by default), created on first use. */
  histogram<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    buckets: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  ): Histogram<L> {
    return this.#getOrCreate(
      name,
      () => new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] }),
    );
  }

  /**
   * A gauge read at scrape time from `collect`, for figures another part owns: the relay's lag,
   * the outbox backlog, a projection's position. A failing `collect` leaves the gauge unset.
   * @example
   * metrics.registerGauge('ferry_relay_lag_seconds', 'Age of the oldest unpublished message', () => relay.lagSeconds());
   */
  registerGauge(name: string, help: string, collect: GaugeCollector): Gauge {
    return this.#getOrCreate(
      name,
      () =>
        new Gauge({
          name,
          help,
          registers: [this.registry],
          async collect() {
            try {
              this.set(await collect());
            } catch {
              this.reset();
            }
          },
        }),
    );
  }

  /** The exposition text Prometheus scrapes. */
  async scrape(): Promise<string> {
    return this.registry.metrics();
  }

  #getOrCreate<M>(name: string, create: () => M): M {
    return (this.registry.getSingleMetric(name) as M | undefined) ?? create();
  }
}
