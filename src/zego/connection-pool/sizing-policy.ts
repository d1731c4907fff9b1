/**
 * How many vendor connections a replica keeps, and how early it opens them: arithmetic only, over
 * what the pool has measured (undefined before the first measurement) and what it holds now.
 */

/** Most connections per replica, whatever the measurements say. */
export const MAX_CONNECTIONS = 64;
/** Fewest connections the pool may keep while calls come: the next call's and a spare. */
const MIN_LIMIT = 4;
/** Connections kept warm between calls. */
const MIN_WARM = 1;
/** Headroom over the calls expected in flight. */
const HEADROOM = 1.5;
/** Before any measurement: a WAN handshake (TCP + TLS) and a slow vendor answer. */
const ASSUMED_SETUP_MS = 250;
const ASSUMED_ANSWER_MS = 1000;
/**
 * How long a new plain-HTTP connection may still hold its first bytes after `connect`, until a
 * first exchange shows more: a TCP proxy on the way (a service mesh's sidecar, an egress proxy)
 * accepts at once and connects onwards later. Over HTTPS the handshake crosses the whole path, so
 * a connection is warm once it is up.
 */
const ASSUMED_HIDDEN_SETUP_MS = 300;
/** The most a learned hidden set-up may grow to. */
const MAX_HIDDEN_SETUP_MS = 5000;
/** Kept-alive answers needed before a fresh connection's first answer is compared with them. */
const MIN_REUSED_SAMPLES = 20;
/** Slack on top of a connection's set-up, for timers and scheduling on a busy node: a connection may come up that much late. */
const SCHEDULING_SLACK_MS = 20;

/** The hidden set-up assumed before any first exchange, by the vendor URL's protocol (`http:` or `https:`). */
export function assumedHiddenSetupMs(protocol: string): number {
  return protocol === 'https:' ? 0 : ASSUMED_HIDDEN_SETUP_MS;
}

/**
 * How far ahead of a call its connection must be opened: the hidden set-up, and twice the set-up
 * (p99) or the scheduling slack, whichever is more (a fixed hidden set-up leaves no room else).
 */
export function leadMs(hiddenSetupMs: number, setupP99Ms: number | undefined): number {
  return hiddenSetupMs + Math.max(SCHEDULING_SLACK_MS, 2 * (setupP99Ms ?? ASSUMED_SETUP_MS));
}

/**
 * The most connections to keep: the calls that may be in flight at the whole budget, each holding
 * a connection for its answer (p99) and its lead, with headroom; 4 to 64.
 */
export function connectionLimit(sizing: { budgetPerSecond: number; answerP99Ms: number | undefined; leadMs: number }): number {
  const heldMs = (sizing.answerP99Ms ?? ASSUMED_ANSWER_MS) + sizing.leadMs;
  const inFlight = (sizing.budgetPerSecond * heldMs) / 1000;
  return Math.min(MAX_CONNECTIONS, Math.max(MIN_LIMIT, Math.ceil(inFlight * HEADROOM) + 2));
}

/** How long a new connection waits after it is up before it carries a call; usable some time before it idles out, whatever was learned. */
export function settleMs(hiddenSetupMs: number, keepAliveIdleMs: number): number {
  return Math.min(hiddenSetupMs, keepAliveIdleMs / 2);
}

export interface Demand {
  /** Calls granted a slot within the lead from now, and not yet sent. */
  dueWithinLead: number;
  /** Calls sent in the last second: the rate this replica is given now. */
  callsLastSecond: number;
  leadMs: number;
  /** Since a call last left or asked for a connection. */
  msSinceDemand: number;
  keepAliveIdleMs: number;
}

/**
 * The idle connections to have: while calls come (one is due, or one came within the keep-alive
 * idle time), one for each call that may leave within the lead, by the slots granted or the recent
 * rate, and a spare; between calls, one kept warm so the next call after a quiet spell does not
 * wait for a handshake.
 */
export function idleWanted(demand: Demand): number {
  const calling = demand.dueWithinLead > 0 || demand.msSinceDemand < demand.keepAliveIdleMs;
  if (!calling) return MIN_WARM;
  const steady = Math.ceil((demand.callsLastSecond * demand.leadMs) / 1000);
  return Math.max(demand.dueWithinLead, steady) + 1;
}

export interface Held {
  /** Connections a call can leave on now. */
  idle: number;
  /** Idle ones already claimed by calls at their slots. */
  claimed: number;
  /** Idle ones that will close for idling before a replacement opened later could be warm (`renewals`). */
  expiring: number;
  busy: number;
  /** Being set up, or up and still inside their hidden set-up. */
  pending: number;
  limit: number;
}

/**
 * Connections to open now, within the limit, never negative: enough for the idle ones wanted
 * (pending ones count), and one replacement when none would be left warm past the ones about to
 * close for idling. Only that one: while calls come, each takes the longest-idle connection, the
 * first to expire, so expiring ones are used rather than lost (and a claim takes one of them).
 */
export function connectionsToOpen(wanted: number, held: Held): number {
  const have = held.idle + held.pending - held.claimed;
  const lasting = held.idle + held.pending - Math.max(held.claimed, held.expiring);
  const room = held.limit - (held.idle + held.busy + held.pending);
  return Math.max(0, Math.min(Math.max(wanted - have, MIN_WARM - lasting), room));
}

/** An idle connection's close for idling, and from when it can carry a call (a spare settles first). */
export interface IdleDeadline {
  closesAt: number;
  usableFrom: number;
}

export interface Renewals {
  /** Connections whose replacement must be opened now to be warm before they close. */
  expiring: number;
  /** When the next one will be, if any: the pool looks again then. */
  nextAt?: number;
}

/**
 * Which idle connections to replace ahead of their close: those closing within twice the lead (a
 * replacement's set-up and hidden set-up, with slack for a busy node whose timers fire late), once
 * they can carry a call (a settling spare is itself the replacement). Without this, the one
 * connection kept warm between calls idled out and left a gap of a set-up and a hidden set-up
 * (300 ms over plain HTTP) every keep-alive period: a call at its slot in it was not ready.
 */
export function renewals(deadlines: readonly IdleDeadline[], now: number, leadMs: number): Renewals {
  let expiring = 0;
  let nextAt: number | undefined;
  for (const { closesAt, usableFrom } of deadlines) {
    const renewAt = Math.max(usableFrom, closesAt - 2 * leadMs);
    if (renewAt <= now) expiring++;
    else nextAt = Math.min(nextAt ?? renewAt, renewAt);
  }
  return { expiring, nextAt };
}

export interface FirstExchange {
  /** How long the connection had been up when its first request was on the wire. */
  ageMs: number;
  /** From the wire to the first byte of the answer. */
  answerMs: number;
}

export interface ReusedAnswers {
  count: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * The hidden set-up after a fresh connection's first answer. Slower than nearly every kept-alive
 * answer, on a connection young enough to have been held, means the path held its first bytes (a
 * proxy connecting onwards): by about the difference, from when it came up. It only grows, and
 * at most doubles per answer (from at least the scheduling slack), so one slow answer of the
 * vendor's cannot stall the pool.
 */
export function learnedHiddenSetupMs(currentMs: number, first: FirstExchange, reused: ReusedAnswers): number {
  if (reused.count < MIN_REUSED_SAMPLES || first.ageMs > 2 * currentMs) return currentMs;
  if (first.answerMs <= reused.p99Ms + SCHEDULING_SLACK_MS / 4) return currentMs;
  const held = first.ageMs + first.answerMs - reused.p50Ms;
  const raised = Math.min(held, 2 * Math.max(currentMs, SCHEDULING_SLACK_MS), MAX_HIDDEN_SETUP_MS);
  return Math.max(currentMs, raised);
}
