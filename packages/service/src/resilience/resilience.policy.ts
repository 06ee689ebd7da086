import {
  BulkheadPolicy,
  bulkhead,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  type IPolicy,
  noop,
  retry,
  SamplingBreaker,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import { EitherBreaker } from './either.breaker.js';

/** Retries with exponential backoff and jitter; used for idempotent calls only. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 3). */
  readonly maxAttempts?: number;
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
}

/** The circuit breaker: opens on either rule, lets one probe through after `halfOpenAfterMs`. */
export interface BreakerOptions {
  /** Opens after this many failures in a row (default 5). */
  readonly consecutiveFailures?: number;
  /** Opens when this share of calls in the window failed (default 0.5)… */
  readonly failureRatio?: number;
  /** …over this window (default 10 s)… */
  readonly samplingMs?: number;
  /** …once calls arrive at least this often per second (default 5). */
  readonly minimumRps?: number;
  /** Time open before a half-open probe (default 10 s). */
  readonly halfOpenAfterMs?: number;
}

/** The bulkhead: at most `maxConcurrent` calls at once, `maxQueue` waiting; more are refused. */
export interface BulkheadOptions {
  readonly maxConcurrent?: number;
  readonly maxQueue?: number;
}

/** Resilience of a client to one target. `false` turns a part off. */
export interface ResilienceOptions {
  /** Per attempt (default 5000 ms). */
  readonly timeoutMs?: number;
  readonly retry?: RetryOptions | false;
  readonly breaker?: BreakerOptions | false;
  readonly bulkhead?: BulkheadOptions | false;
}

/** The policies a client runs each call through. */
export interface ResiliencePolicies {
  /** Bulkhead, retry, breaker, timeout: for idempotent calls. */
  readonly idempotent: IPolicy;
  /** Bulkhead, breaker, timeout: a call that must not be repeated. */
  readonly once: IPolicy;
  readonly breaker: CircuitBreakerPolicy | undefined;
}

const STATE_VALUE: Record<CircuitState, number> = {
  [CircuitState.Closed]: 0,
  [CircuitState.HalfOpen]: 1,
  [CircuitState.Open]: 2,
  [CircuitState.Isolated]: 3,
};
const STATE_NAME: Record<CircuitState, string> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'isolated',
};

/**
 * Builds the cockatiel policies for calls to `target`. `isFailure` says which errors count
 * against the breaker and may be retried (network errors, timeouts, 5xx), as opposed to answers
 * such as 404 that pass through. Breaker state changes are a log line and the gauge
 * `ferry_circuit_breaker_state{target}` (0 closed, 1 half-open, 2 open, 3 isolated).
 */
export function resiliencePolicies(
  target: string,
  options: ResilienceOptions,
  isFailure: (error: Error) => boolean,
  observe: { readonly logger?: Logger | undefined; readonly metrics?: Metrics | undefined } = {},
): ResiliencePolicies {
  const handled = handleWhen(isFailure);
  const timeoutPolicy = timeout(options.timeoutMs ?? 5_000, TimeoutStrategy.Aggressive);
  let breakerPolicy: CircuitBreakerPolicy | undefined;
  if (options.breaker !== false) {
    const b = options.breaker ?? {};
    breakerPolicy = circuitBreaker(handled, {
      halfOpenAfter: b.halfOpenAfterMs ?? 10_000,
      breaker: new EitherBreaker([
        new ConsecutiveBreaker(b.consecutiveFailures ?? 5),
        new SamplingBreaker({
          threshold: b.failureRatio ?? 0.5,
          duration: b.samplingMs ?? 10_000,
          minimumRps: b.minimumRps ?? 5,
        }),
      ]),
    });
    const gauge = observe.metrics?.gauge(
      'ferry_circuit_breaker_state',
      'Circuit breaker state: 0 closed, 1 half-open, 2 open',
      ['target'],
    );
    gauge?.set({ target }, 0);
    breakerPolicy.onStateChange((state) => {
      gauge?.set({ target }, STATE_VALUE[state]);
      const log = state === CircuitState.Closed ? observe.logger?.info : observe.logger?.warn;
      log?.call(
        observe.logger,
        { target, breaker: STATE_NAME[state] },
        `circuit breaker to ${target} is ${STATE_NAME[state]}`,
      );
    });
  }
  const bulkheadPolicy: BulkheadPolicy | undefined =
    options.bulkhead === false
      ? undefined
      : bulkhead(options.bulkhead?.maxConcurrent ?? 64, options.bulkhead?.maxQueue ?? 256);
  const retryPolicy =
    options.retry === false
      ? noop
      : retry(handled, {
          maxAttempts: Math.max(0, (options.retry?.maxAttempts ?? 3) - 1),
          backoff: new ExponentialBackoff({
            initialDelay: options.retry?.initialDelayMs ?? 100,
            maxDelay: options.retry?.maxDelayMs ?? 2_000,
          }),
        });
  const layers = (withRetry: boolean): IPolicy[] =>
    [bulkheadPolicy, withRetry ? retryPolicy : undefined, breakerPolicy, timeoutPolicy].filter(
      (p): p is NonNullable<typeof p> => p !== undefined,
    ) as IPolicy[];
  return {
    idempotent: wrap(...layers(true)),
    once: wrap(...layers(false)),
    breaker: breakerPolicy,
  };
}

export { BulkheadPolicy };
