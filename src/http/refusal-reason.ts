const reasons = new WeakMap<object, string>();

/** Records why the request of `response` was refused, as the exception filter answered it. */
export function recordRefusalReason(response: object, reason: string): void {
  reasons.set(response, reason);
}

/** Why the request of `response` was refused; the request log groups refusals by it. */
export function refusalReasonOf(response: object): string | undefined {
  return reasons.get(response);
}
