const hidden = '[secret]';

/**
 * A setting that must never reach a log, an error message or a JSON dump: it prints as
 * `[secret]` everywhere, and only {@link Secret.reveal} gives the value.
 */
export class Secret<T = string> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  /** The value itself; call it where the secret is used, never where it is logged. */
  reveal(): T {
    return this.#value;
  }

  toString(): string {
    return hidden;
  }

  toJSON(): string {
    return hidden;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return hidden;
  }
}
