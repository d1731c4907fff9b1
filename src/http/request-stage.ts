/**
 * What a request is waiting on: a small fixed set of stable names, since they become a metric
 * label (`waiting_on`) and log field. Only steps a request can actually wait in are named (a
 * step that never yields to the event loop, such as checking the API key, cannot be seen
 * waiting); everything else is `handler`: the gateway's own code between named waits.
 */

/** The most vendor attempts a call makes (ZEGO_MAX_ATTEMPTS is at most 10): one stage name each. */
export const MAX_VENDOR_ATTEMPT_STAGES = 10;

type VendorAttemptStage = `vendor attempt ${number}`;

export type RequestStage =
  /** Receiving the request body from the client. */
  | 'request body'
  /** The gateway's own code (middleware, guards, pipes, a route's handler), no named wait. */
  | 'handler'
  /** The client's quota check (a Redis call). */
  | 'client quota'
  /** Claiming or finishing an Idempotency-Key record (a Redis call). */
  | 'idempotency key'
  /** Waiting for an outbound slot of the vendor budget. */
  | 'outbound slot'
  /** A vendor call in flight, by attempt. */
  | VendorAttemptStage
  /** Waiting before the next vendor attempt. */
  | 'retry backoff';

/** The stage of vendor attempt `attempt` (1 for the first); attempts past the last name share it. */
export function vendorAttemptStage(attempt: number): VendorAttemptStage {
  return `vendor attempt ${Math.min(Math.max(1, Math.trunc(attempt)), MAX_VENDOR_ATTEMPT_STAGES)}`;
}

/** Every stage name, in the order a request passes them (a metric's label values, known from the start). */
export const REQUEST_STAGES: readonly RequestStage[] = [
  'request body',
  'handler',
  'client quota',
  'idempotency key',
  'outbound slot',
  ...Array.from({ length: MAX_VENDOR_ATTEMPT_STAGES }, (_, index) => vendorAttemptStage(index + 1)),
  'retry backoff',
];
