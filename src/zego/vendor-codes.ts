/**
 * Every ZIM return code the gateway treats specially, and what it means for the caller.
 * The one table that turns vendor codes into HTTP answers; codes not listed are upstream errors.
 */
export type ZimOutcome =
  | 'success'
  | 'invalid-request'
  | 'operator-not-registered'
  | 'room-exists'
  | 'rate-limited'
  | 'room-quota-exceeded'
  | 'vendor-busy'
  | 'gateway-misconfigured'
  | 'upstream-error';

export interface ZimCodeRule {
  outcome: ZimOutcome;
  /** The HTTP status our caller gets when this is the final answer. */
  status: number;
  /** Safe to retry: the vendor certainly did not act on the request. */
  retryable: boolean;
  /** Sent as Retry-After (seconds) with the final answer. */
  retryAfterSeconds?: number;
  message: string;
}

const RATE_LIMITED: ZimCodeRule = {
  outcome: 'rate-limited',
  status: 429,
  retryable: true,
  retryAfterSeconds: 1,
  message: 'The vendor rate limit was reached; retry later',
};
const BUSY: ZimCodeRule = {
  outcome: 'vendor-busy',
  status: 503,
  retryable: true,
  retryAfterSeconds: 2,
  message: 'The vendor is busy; retry later',
};
const MISCONFIGURED: ZimCodeRule = {
  outcome: 'gateway-misconfigured',
  status: 502,
  retryable: false,
  message: 'The vendor rejected the gateway credentials or configuration; operators are alerted',
};

const TABLE: ReadonlyMap<number, ZimCodeRule> = new Map<number, ZimCodeRule>([
  [0, { outcome: 'success', status: 201, retryable: false, message: 'Created' }],
  [1, BUSY],
  [3, MISCONFIGURED],
  [7, RATE_LIMITED],
  ...rangeOfCodes(100000000, 100000014).map((code): [number, ZimCodeRule] => [code, MISCONFIGURED]),
  [100000015, BUSY],
  [100000016, MISCONFIGURED],
  [100000017, MISCONFIGURED],
  [
    660000002,
    {
      outcome: 'invalid-request',
      status: 400,
      retryable: false,
      message: 'The vendor rejected a parameter of the request',
    },
  ],
  [660300005, RATE_LIMITED],
  [660300006, RATE_LIMITED],
  [
    660300014,
    { outcome: 'room-exists', status: 409, retryable: false, message: 'The room already exists' },
  ],
  [
    660300015,
    {
      outcome: 'room-quota-exceeded',
      status: 503,
      retryable: false,
      message: 'The application has reached its vendor room quota',
    },
  ],
  [660200001, operatorNotRegistered()],
  [660500002, operatorNotRegistered()],
]);

const UNKNOWN: ZimCodeRule = {
  outcome: 'upstream-error',
  status: 502,
  retryable: false,
  message: 'The vendor answered with an unexpected code',
};

export function ruleForCode(code: number): ZimCodeRule {
  return TABLE.get(code) ?? UNKNOWN;
}

/** The codes listed above, for documentation and tests. */
export function knownCodes(): number[] {
  return [...TABLE.keys()];
}

function operatorNotRegistered(): ZimCodeRule {
  return {
    outcome: 'operator-not-registered',
    status: 422,
    retryable: false,
    message: 'The operator user (fromUserId) is not registered with the vendor',
  };
}

function rangeOfCodes(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}
