import { readFileSync } from 'node:fs';
import type { ConfigProblem } from './config-error.js';

export type Env = Readonly<Record<string, string | undefined>>;

interface IntRule {
  default?: number;
  min: number;
  max: number;
}

/**
 * Reads typed values out of the environment and collects every problem instead of stopping at
 * the first, so an operator fixes a broken Deployment in one round. Problems name the variable
 * and the rule; they never quote the value, which may be a secret.
 */
export class EnvReader {
  readonly problems: ConfigProblem[] = [];

  constructor(private readonly env: Env) {}

  problem(variable: string, reason: string): void {
    this.problems.push({ variable, reason });
  }

  /** A trimmed, non-empty value, or undefined when unset or blank. */
  optional(name: string): string | undefined {
    const raw = this.env[name];
    if (raw === undefined) return undefined;
    const value = raw.trim();
    return value === '' ? undefined : value;
  }

  required(name: string): string | undefined {
    const value = this.optional(name);
    if (value === undefined) this.problem(name, 'is required');
    return value;
  }

  int(name: string, rule: IntRule): number {
    const raw = rule.default === undefined ? this.required(name) : this.optional(name);
    if (raw === undefined) return rule.default ?? Number.NaN;
    if (!/^\d+$/.test(raw)) {
      this.problem(name, `must be a whole number from ${rule.min} to ${rule.max}`);
      return Number.NaN;
    }
    const value = Number(raw);
    if (value < rule.min || value > rule.max) {
      this.problem(name, `must be a whole number from ${rule.min} to ${rule.max}`);
      return Number.NaN;
    }
    return value;
  }

  /** One of a fixed set of words (case-sensitive), or the default when unset. */
  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (!(values as readonly string[]).includes(raw)) {
      this.problem(name, `must be one of ${values.join(', ')}`);
      return fallback;
    }
    return raw as T;
  }

  /** `true` or `false`, or the default when unset. */
  bool(name: string, fallback: boolean): boolean {
    return this.oneOf(name, ['true', 'false'], fallback ? 'true' : 'false') === 'true';
  }

  /**
   * A value given either inline (`NAME`) or as a file path (`NAME_FILE`, a mounted Kubernetes
   * Secret): exactly one of the two. Returns the content and where it came from.
   */
  inlineOrFile(
    name: string,
    fileName: string,
  ): { value: string; file?: string } | undefined {
    const inline = this.optional(name);
    const file = this.optional(fileName);
    if (inline !== undefined && file !== undefined) {
      this.problem(name, `set either ${name} or ${fileName}, not both`);
      return undefined;
    }
    if (inline !== undefined) return { value: inline };
    if (file === undefined) {
      this.problem(name, `is required (or ${fileName} naming a file that holds it)`);
      return undefined;
    }
    try {
      const content = readFileSync(file, 'utf8').trim();
      if (content === '') {
        this.problem(fileName, 'names an empty file');
        return undefined;
      }
      return { value: content, file };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      this.problem(fileName, `names a file that cannot be read (${code})`);
      return undefined;
    }
  }
}
