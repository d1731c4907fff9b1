import { inspect } from 'node:util';

/**
 * A value that must never be printed. Logging, JSON serialisation and util.inspect all see
 * "[redacted]"; only `reveal()` hands out the value, so every use of it is greppable.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}
