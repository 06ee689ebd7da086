/** How a failing handler is retried before its message is dead-lettered. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 5). */
  readonly maxAttempts: number;
  /** Delay before the second attempt, in ms (default 100). */
  readonly initialDelayMs: number;
  /** Upper bound of one delay, in ms (default 10,000). */
  readonly maxDelayMs: number;
  /** Growth per attempt (default 2). */
  readonly multiplier: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  initialDelayMs: 100,
  maxDelayMs: 10_000,
  multiplier: 2,
};

/**
 * Delay before attempt `attempt + 1` after `attempt` failures: exponential with "equal jitter"
 * (half the exponential bound plus a uniform draw over the other half), which keeps a floor
 * under each delay and spreads the retries of many consumers apart.
 */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const bound = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (attempt - 1));
  return Math.round(bound / 2 + (random() * bound) / 2);
}
