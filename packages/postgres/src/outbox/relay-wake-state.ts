/**
 * What the last wake-up check of a database's outbox appends found, so that the appends right
 * after it can skip the check (decision 0005, second addendum).
 *
 * An append wakes a polling relay only while one waits for work (`ferry.relay_state`); reading
 * that row in every append cost a tenth of a short business transaction's throughput. A check that
 * found no relay waiting lets the appends of the next `quietForMs` (10 ms) on the same pool go
 * without it. A relay that announces it waits within that window is not woken by them, but it
 * looks for pending rows again `secondLookMs` (50 ms) after announcing: an append made within
 * 10 ms of a check made before the announcement, in a transaction that committed within the next
 * 40 ms (Ferry's own transactions send the append with their COMMIT), is found then. A check that
 * found a relay waiting, or a check not yet answered, leaves every append checked.
 */
export class RelayWakeState {
  /** How long a check that found no relay waiting lets appends skip the check. */
  quietForMs = 10;
  #quietUntil = 0;

  /** Whether an append sent now may skip the check. */
  get quiet(): boolean {
    return performance.now() < this.#quietUntil;
  }

  /**
   * Records a check's answer. `sentAt` is when the check was sent, before the server read the
   * state, so the window is counted from no later than the read.
   */
  observed(waiting: boolean, sentAt: number): void {
    this.#quietUntil = waiting ? 0 : Math.max(this.#quietUntil, sentAt + this.quietForMs);
  }
}

const states = new WeakMap<object, RelayWakeState>();

/** The wake-up state of the database behind `pool` (one per pool, so per database). */
export function relayWakeStateOf(pool: object): RelayWakeState {
  let state = states.get(pool);
  if (!state) {
    state = new RelayWakeState();
    states.set(pool, state);
  }
  return state;
}
