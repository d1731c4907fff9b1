import type { FieldError } from './error-body.js';
import { fieldPath } from './request-validation.error.js';

/**
 * No valid request nests deeper than 3 levels; capping depth keeps the recursive walks of
 * validation and transformation from overflowing the stack on a crafted body (a 500).
 */
export const MAX_NESTING_DEPTH = 16;

/**
 * No object of a valid body has more than 5 keys. class-transformer's handling of an object costs
 * the square of its key count, so a wide object must be refused before it gets there.
 */
export const MAX_KEYS_PER_OBJECT = 32;

/** A parsed object or array waiting to be looked at, and how to name it if it is refused. */
interface Pending {
  readonly value: object;
  readonly depth: number;
  readonly parent?: Pending;
  readonly key?: string;
}

/**
 * The first bound a parsed JSON body breaks, named as a client would find it (`attributes[0]`,
 * `body`), or undefined. Bounds: nesting depth, keys per object, and `maxTotalKeys` keys in all
 * (object keys plus array items). Walked without recursion, and stops as soon as a bound is
 * passed, so a hostile body costs no more than the first bound it breaks.
 */
export function jsonBodyBoundsBreach(body: unknown, maxTotalKeys: number): FieldError | undefined {
  if (!isObject(body)) return undefined;
  let totalKeys = 0;
  const tooManyInAll = (): FieldError => ({
    field: 'body',
    reason: `must not have more than ${maxTotalKeys} keys and array items in all`,
  });
  const pending: Pending[] = [{ value: body, depth: 1 }];
  while (pending.length > 0) {
    const current = pending.pop()!;
    if (current.depth > MAX_NESTING_DEPTH) {
      return { field: 'body', reason: `must not nest deeper than ${MAX_NESTING_DEPTH} levels` };
    }
    if (Array.isArray(current.value)) {
      const items = current.value as unknown[];
      totalKeys += items.length;
      if (totalKeys > maxTotalKeys) return tooManyInAll();
      for (let index = 0; index < items.length; index++) {
        const item = items[index];
        if (isObject(item)) pending.push({ value: item, depth: current.depth + 1, parent: current, key: String(index) });
      }
      continue;
    }
    const object = current.value as Record<string, unknown>;
    let keys = 0;
    // for...in rather than Object.keys: counting stops at the bound instead of listing every key first.
    for (const key in object) {
      if (++keys > MAX_KEYS_PER_OBJECT) {
        return { field: pathOf(current), reason: `must not have more than ${MAX_KEYS_PER_OBJECT} keys` };
      }
      if (++totalKeys > maxTotalKeys) return tooManyInAll();
      const child = object[key];
      if (isObject(child)) pending.push({ value: child, depth: current.depth + 1, parent: current, key });
    }
  }
  return undefined;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/** The client's path of a pending object: `body` for the body itself. Built only for a refusal. */
function pathOf(pending: Pending): string {
  const keys: string[] = [];
  for (let at: Pending | undefined = pending; at?.key !== undefined; at = at.parent) keys.push(at.key);
  if (keys.length === 0) return 'body';
  return keys.reverse().reduce((path, key) => fieldPath(path, key), '');
}
