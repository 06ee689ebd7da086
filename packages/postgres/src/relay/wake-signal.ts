/** A wake-up that a waiter can await with a timeout; wakes given while nobody waits are kept. */
export class WakeSignal {
  #pending = false;
  #waiter: (() => void) | undefined;

  wake(): void {
    if (this.#waiter) {
      const resolve = this.#waiter;
      this.#waiter = undefined;
      resolve();
    } else this.#pending = true;
  }

  /**
   * Resolves on the next wake (or at once if one is pending), or after `timeoutMs`; to true if
   * woken, false if the time ran out.
   */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve(false);
      }, timeoutMs);
      this.#waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}
