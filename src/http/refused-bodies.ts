import type { IncomingMessage } from 'node:http';
import { Injectable } from '@nestjs/common';
import type { RequestValidationError } from './request-validation.error.js';

/** Bodies up to this size are remembered: a retried body is small; a large one costs its read anyway. */
export const REMEMBERED_BODY_MAX_BYTES = 2048;
/** Refused bodies remembered at once, the least recently seen dropped first (at most ~0.5 MiB). */
export const REMEMBERED_BODIES = 256;

/**
 * The bodies validation refused lately, by route and exact bytes, with the refusal they got. A
 * caller stuck in a retry loop sends the same bad body again and again: its 400 is then answered
 * from here, without transforming and validating the body once more (most of a 400's cost).
 * Validation depends on the body's bytes and the route alone, so the answer is the same one.
 *
 * The body guard offers each body it parsed (`consider`), and asks before that (`recall`); the
 * validation pipe marks its verdicts on bodies (markBodyRefusal); the exception filter tells which
 * offered body got one (`refused`).
 */
@Injectable()
export class RefusedBodies {
  private readonly remembered = new Map<string, RequestValidationError>();
  /** Bodies on their way to validation; keyed only if refused (a valid body costs no key). */
  private readonly offered = new WeakMap<IncomingMessage, { route: string; raw: Buffer }>();

  /**
   * The refusal a body got when it was last refused on this route, if it is remembered: the same
   * error, thrown again (it carries no stack, and its answer is serialised once).
   */
  recall(route: string, raw: Buffer): RequestValidationError | undefined {
    if (raw.length > REMEMBERED_BODY_MAX_BYTES || this.remembered.size === 0) return undefined;
    const key = bodyKey(route, raw);
    const refusal = this.remembered.get(key);
    if (refusal !== undefined) {
      // Seen again: it moves to the back of the line of bodies to forget.
      this.remembered.delete(key);
      this.remembered.set(key, refusal);
    }
    return refusal;
  }

  /** A body on its way to validation: remembered if validation refuses it. */
  consider(request: IncomingMessage, route: string, raw: Buffer): void {
    if (raw.length <= REMEMBERED_BODY_MAX_BYTES) this.offered.set(request, { route, raw });
  }

  /**
   * `request` was refused with `error`: remembered when validation refused its body for what the
   * body holds (markBodyRefusal), not for a header or the state of the service.
   */
  refused(request: IncomingMessage, error: RequestValidationError): void {
    const offered = this.offered.get(request);
    if (offered === undefined || !bodyRefusals.has(error)) return;
    this.offered.delete(request);
    const key = bodyKey(offered.route, offered.raw);
    if (this.remembered.size >= REMEMBERED_BODIES) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(key, error);
  }
}

const bodyRefusals = new WeakSet<RequestValidationError>();

/** Marks `error` as validation's verdict on the body alone (the validation pipe): only those are remembered. */
export function markBodyRefusal(error: RequestValidationError): void {
  bodyRefusals.add(error);
}

function bodyKey(route: string, raw: Buffer): string {
  // latin1 maps each byte to one character: two bodies share a key only if their bytes are equal.
  return `${route}\n${raw.toString('latin1')}`;
}
