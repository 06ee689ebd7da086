import type { CircuitState, IBreaker } from 'cockatiel';

/**
 * Opens when either breaker would: a run of consecutive failures, or a failure ratio over a
 * sampling window. Both see every outcome.
 */
export class EitherBreaker implements IBreaker {
  constructor(private readonly breakers: readonly IBreaker[]) {}

  get state(): unknown {
    return this.breakers.map((b) => b.state);
  }

  set state(value: unknown) {
    const states = value as unknown[];
    this.breakers.forEach((b, i) => {
      b.state = states[i];
    });
  }

  success(state: CircuitState): void {
    for (const breaker of this.breakers) breaker.success(state);
  }

  failure(state: CircuitState): boolean {
    let open = false;
    for (const breaker of this.breakers) open = breaker.failure(state) || open;
    return open;
  }
}
