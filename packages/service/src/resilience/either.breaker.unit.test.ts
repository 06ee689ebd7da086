import { CircuitState, ConsecutiveBreaker, CountBreaker } from 'cockatiel';
import { describe, expect, it } from 'vitest';
import { EitherBreaker } from './either.breaker.js';

describe('EitherBreaker', () => {
  it('opens when the consecutive rule trips', () => {
    const breaker = new EitherBreaker([
      new ConsecutiveBreaker(2),
      new CountBreaker({ threshold: 0.9, size: 100 }),
    ]);
    expect(breaker.failure(CircuitState.Closed)).toBe(false);
    expect(breaker.failure(CircuitState.Closed)).toBe(true);
  });

  it('opens when the ratio rule trips although failures never ran in a row', () => {
    const breaker = new EitherBreaker([
      new ConsecutiveBreaker(100),
      new CountBreaker({ threshold: 0.4, size: 4, minimumNumberOfCalls: 4 }),
    ]);
    breaker.success(CircuitState.Closed);
    expect(breaker.failure(CircuitState.Closed)).toBe(false);
    breaker.success(CircuitState.Closed);
    expect(breaker.failure(CircuitState.Closed)).toBe(true);
  });

  it('lets every breaker see every outcome, and saves and restores their state', () => {
    const consecutive = new ConsecutiveBreaker(3);
    const breaker = new EitherBreaker([consecutive, new ConsecutiveBreaker(5)]);
    breaker.failure(CircuitState.Closed);
    breaker.failure(CircuitState.Closed);
    expect(breaker.state).toEqual([2, 2]);
    breaker.success(CircuitState.Closed);
    expect(breaker.state).toEqual([0, 0]);
    breaker.state = [1, 4];
    expect(consecutive.state).toBe(1);
  });
});
