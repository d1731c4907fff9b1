/**
 * What reached the vendor's door in one fleet run, by two clocks, and whose a crowded window is.
 *
 * The fake vendor stamps each call's arrival on its own event loop; a stall of that loop stamps the
 * calls that arrived meanwhile together, so its record can show 21 calls in a window the gateways
 * kept to 20. The kernel's timestamps (loopback-capture.ts) cannot bunch that way. The cap is
 * therefore counted on the kernel's times, each call matched to the fake's record by its
 * SignatureNonce; a failure says whose the count is:
 *
 * - the gateway's: the kernel saw the calls arrive that close;
 * - the fake's: the kernel saw them spaced, the fake stamped them late (its lag behind the kernel,
 *   and the stalls its event-loop watch reported).
 *
 * Over HTTPS the capture cannot read the requests (loopback-capture.ts counts the records that
 * carry them): the kernel's times still count, but no call can be matched to the fake's record,
 * so the two are compared by number, and a refusal is the gateway's only where the kernel saw a
 * window over the limit.
 */
import type { EventLoopStall } from '../fake-zim/event-loop-stalls.js';
import { ZimCode } from '../fake-zim/fake-zim-server.js';
import { densestWindow } from './call-windows.js';
import { criterion, type Criterion } from './criteria.js';
import type { VendorCall } from './fleet.js';
import type { KernelArrival } from './loopback-capture.js';

export interface DoorBudget {
  /** Calls the vendor allows per window. */
  limit: number;
  windowMs: number;
  /** The gateway's safety margin: its scheduler spaces calls over windowMs + marginMs. */
  marginMs: number;
}

export interface DoorRecord {
  /** The fake's record of the run. */
  calls: readonly VendorCall[];
  /** The kernel's record of the run at the fake's port (over HTTPS without targets); undefined when none was taken. */
  kernel: readonly KernelArrival[] | undefined;
  /**
   * With a path between the gateways and the fake (a shaping TCP proxy): the kernel's record at
   * the path's entrance, when the calls left the gateways. Tells the path's bunching from theirs.
   */
  departures?: readonly KernelArrival[];
  /** The fake's event-loop stalls that ended during the run. */
  stalls: readonly EventLoopStall[];
  /** Wall clock (ms) the run's times are told from. */
  startedAt: number;
}

export interface DoorFigures {
  /** Worst window of windowMs on the kernel's times (undefined without a capture). */
  kernelMax: number | undefined;
  /** Worst window of windowMs as the calls left the gateways (with a path between only). */
  departedMax: number | undefined;
  /** The same on windowMs + marginMs: what the scheduler itself promises, reported only. */
  kernelMaxWithMargin: number | undefined;
  /** Worst window of windowMs on the fake's own clock. */
  fakeMax: number;
  vendorRefusals: number;
  /**
   * Of those, the ones the kernel's times account for: more than the limit reached the port in the
   * window ending at the refused call's arrival. The others are the fake's own (its stall bunched
   * their stamps). Without a capture, all of them.
   */
  refusalsOnTheWire: number;
  /** Calls the fake recorded that the capture did not see, and vendor POSTs it saw that the fake did not record. */
  unseenByKernel: number;
  unknownToFake: number;
  /** The most the fake stamped a call after the kernel saw it (ms). */
  fakeMaxLagMs: number | undefined;
  longestStallMs: number;
  attribution: string;
}

const nonceOf = (target: string | undefined): string | null =>
  target === undefined ? null : new URLSearchParams(target.slice(target.indexOf('?') + 1)).get('SignatureNonce');
/** A request to the vendor's endpoint; over TLS every request the capture counted is one. */
const isVendorCall = (arrival: KernelArrival): boolean =>
  arrival.target === undefined || arrival.target === '/' || arrival.target.startsWith('/?');

export function doorFigures(record: DoorRecord, budget: DoorBudget): DoorFigures {
  const seconds = (wallMs: number): string => `${((wallMs - record.startedAt) / 1000).toFixed(2)} s`;
  const fakeWindow = densestWindow(
    record.calls.map((c) => c.atHr),
    budget.windowMs,
  );
  const fakeFrom = record.calls.find((c) => c.atHr === fakeWindow.start)?.at ?? Number.NaN;
  const vendorRefusals = record.calls.filter((c) => c.code === ZimCode.frequencyLimit).length;
  const longestStallMs = Math.max(0, ...record.stalls.map((s) => s.ms));
  const stallsNear = (from: number): string => {
    const near = record.stalls.filter((s) => s.endedAt >= from - 100 && s.endedAt - s.ms <= from + budget.windowMs);
    return near.length === 0 ? 'no stall of its event loop reported there' : `its event loop stalled ${near.map((s) => `${s.ms} ms until ${seconds(s.endedAt)}`).join(', ')}`;
  };

  if (record.kernel === undefined) {
    return {
      kernelMax: undefined,
      departedMax: undefined,
      kernelMaxWithMargin: undefined,
      fakeMax: fakeWindow.count,
      vendorRefusals,
      refusalsOnTheWire: vendorRefusals,
      unseenByKernel: 0,
      unknownToFake: 0,
      fakeMaxLagMs: undefined,
      longestStallMs,
      attribution: `no kernel capture: the fake's clock, ${fakeWindow.count} in ${budget.windowMs} ms from ${seconds(fakeFrom)}; ${stallsNear(fakeFrom)}`,
    };
  }

  const vendorArrivals = record.kernel.filter(isVendorCall);
  const matching = matchToFake(record.calls, vendorArrivals);
  const kernelTimes = vendorArrivals.map((a) => a.at);
  const kernelWindow = densestWindow(kernelTimes, budget.windowMs);
  // As the vendor counts: the calls in the window ending at the refused one's arrival, itself
  // included. Unmatched (TLS), a refusal is the wire's only if some window on it was over.
  const refusalsOnTheWire = record.calls.filter((call) => {
    if (call.code !== ZimCode.frequencyLimit) return false;
    if (!matching.matched) return kernelWindow.count > budget.limit;
    const arrival = matching.arrivalOf(call);
    if (!arrival) return true; // unseen on the wire: nothing clears it
    return kernelTimes.filter((t) => t > arrival.at - budget.windowMs && t <= arrival.at).length > budget.limit;
  }).length;
  const kernelMaxWithMargin = densestWindow(kernelTimes, budget.windowMs + budget.marginMs).count;
  const inFakeWindow = record.calls.filter((c) => c.atHr >= fakeWindow.start && c.atHr < fakeWindow.start + budget.windowMs);
  const lagInFakeWindow = Math.max(0, ...inFakeWindow.map((c) => matching.lagMs.get(c) ?? 0));

  const departed = record.departures && densestWindow(record.departures.filter(isVendorCall).map((d) => d.at), budget.windowMs);

  let attribution: string;
  if (kernelWindow.count > budget.limit && departed && departed.count <= budget.limit) {
    attribution =
      `the path's: the calls left the gateways at most ${departed.count} in any ${budget.windowMs} ms, and the path between ` +
      `(the shaping proxy: its delays, jitter and event loop) delivered ${kernelWindow.count} within ${budget.windowMs} ms (from ${seconds(kernelWindow.start)})`;
  } else if (kernelWindow.count > budget.limit) {
    attribution =
      `the gateway's: the kernel saw ${departed ? `${departed.count} calls leave the gateways` : `${kernelWindow.count} calls reach the vendor's port`} ` +
      `within ${budget.windowMs} ms (from ${seconds(departed?.start ?? kernelWindow.start)}); the fake counted ${fakeWindow.count}`;
  } else if (refusalsOnTheWire > 0) {
    // Only a refused call the capture missed gets here: nothing clears it.
    attribution = `not cleared: ${refusalsOnTheWire} refused call(s) the capture did not see; the kernel saw at most ${kernelWindow.count} in any ${budget.windowMs} ms`;
  } else if (fakeWindow.count > budget.limit || vendorRefusals > 0) {
    attribution =
      `the fake's: the kernel saw at most ${kernelWindow.count} calls in any ${budget.windowMs} ms, the fake stamped ` +
      `${fakeWindow.count} within ${budget.windowMs} ms from ${seconds(fakeFrom)}, ` +
      `${matching.matched ? `up to ${lagInFakeWindow} ms after the kernel saw them` : '(TLS: not matched call by call)'}; ${stallsNear(fakeFrom)}`;
  } else {
    attribution = `kernel at most ${kernelWindow.count}${matching.matched ? '' : ' (TLS records)'}, fake at most ${fakeWindow.count} in any ${budget.windowMs} ms`;
  }
  return {
    kernelMax: kernelWindow.count,
    departedMax: departed?.count,
    kernelMaxWithMargin,
    fakeMax: fakeWindow.count,
    vendorRefusals,
    refusalsOnTheWire,
    unseenByKernel: matching.unseen,
    unknownToFake: matching.unknown,
    fakeMaxLagMs: matching.matched ? Math.max(0, ...matching.lagMs.values()) : undefined,
    longestStallMs,
    attribution,
  };
}

/** How the capture's arrivals answer for the fake's calls: by SignatureNonce, or (over TLS) by number only. */
interface Matching {
  matched: boolean;
  /** Calls the fake recorded that the capture did not see; POSTs it saw that the fake did not record. */
  unseen: number;
  unknown: number;
  /** How long after the kernel the fake stamped each matched call (ms). */
  lagMs: ReadonlyMap<VendorCall, number>;
  arrivalOf(call: VendorCall): KernelArrival | undefined;
}

function matchToFake(calls: readonly VendorCall[], arrivals: readonly KernelArrival[]): Matching {
  if (arrivals.some((arrival) => arrival.target === undefined)) {
    const unseen = Math.max(0, calls.length - arrivals.length);
    return { matched: false, unseen, unknown: Math.max(0, arrivals.length - calls.length), lagMs: new Map(), arrivalOf: () => undefined };
  }
  const byNonce = new Map<string, KernelArrival>();
  for (const arrival of arrivals) {
    const nonce = nonceOf(arrival.target);
    if (nonce !== null && !byNonce.has(nonce)) byNonce.set(nonce, arrival);
  }
  const arrivalOf = (call: VendorCall): KernelArrival | undefined => byNonce.get(call.query?.SignatureNonce ?? '');
  const lagMs = new Map<VendorCall, number>();
  let unseen = 0;
  for (const call of calls) {
    const arrival = arrivalOf(call);
    if (arrival) lagMs.set(call, Math.round(call.at - arrival.at));
    else unseen++;
  }
  return { matched: true, unseen, unknown: Math.max(0, arrivals.length - (calls.length - unseen)), lagMs, arrivalOf };
}

/**
 * The cap at the vendor's door, attributably: the capture saw every call (else its counts mean
 * nothing), no window over the limit on the kernel's times, and no vendor refusal the kernel's
 * times account for. A refusal they do not account for is the fake's own stall: it is named in
 * the measured text (and printed with the run), and does not fail the gateway.
 */
export function capAtTheDoor(figures: DoorFigures, budget: DoorBudget): Criterion[] {
  const captured = figures.kernelMax !== undefined;
  // Behind a shaping proxy (the test's stand-in for a network) the gateways answer for what left
  // them; what the path bunches on its way is the path's, named in the text, not the gateways'.
  const pathBunched = figures.departedMax !== undefined && figures.departedMax <= budget.limit;
  return [
    ...(captured
      ? [
          criterion(
            "the loopback capture saw every call the fake recorded, and none it did not",
            figures.unseenByKernel === 0 && figures.unknownToFake === 0,
            `${figures.unseenByKernel} unseen, ${figures.unknownToFake} unknown to the fake`,
          ),
        ]
      : []),
    criterion(
      `no window of ${budget.windowMs} ms over ${budget.limit} calls at the vendor's door (${captured ? "the kernel's arrival times" : "the fake's clock"})`,
      (figures.departedMax ?? figures.kernelMax ?? figures.fakeMax) <= budget.limit,
      figures.attribution,
    ),
    criterion(
      `no vendor refusal (660300005)${captured ? " the kernel's arrival times account for" : ''}`,
      figures.refusalsOnTheWire === 0 || pathBunched,
      `${figures.refusalsOnTheWire} of ${figures.vendorRefusals} refused; ${figures.attribution}`,
    ),
  ];
}

/** One line for a run's output: both clocks' worst windows, the fake's lag and stalls. */
export function formatDoorFigures(figures: DoorFigures, budget: DoorBudget): string {
  const kernel =
    figures.kernelMax === undefined
      ? 'kernel: not captured'
      : `kernel: worst ${budget.windowMs} ms window ${figures.kernelMax} (${budget.windowMs + budget.marginMs} ms: ${figures.kernelMaxWithMargin}), ` +
        `${figures.departedMax === undefined ? '' : `leaving the gateways ${figures.departedMax}, `}unseen ${figures.unseenByKernel}, unknown ${figures.unknownToFake}`;
  const lag = figures.fakeMaxLagMs === undefined ? '' : `, stamped at most ${figures.fakeMaxLagMs} ms after the kernel`;
  return (
    `vendor's door: ${kernel}; fake: worst window ${figures.fakeMax}, refusals ${figures.vendorRefusals} ` +
    `(${figures.refusalsOnTheWire} on the wire)${lag}, ` +
    `longest event-loop stall ${figures.longestStallMs} ms`
  );
}
