/**
 * Load from several client teams at once, for the fleet tests and `npm run bench:fairness`: how
 * the vendor budget is shared between teams is measured where the vendor counts, as in fleet.ts.
 *
 * - Each team is a client of the gateway (its own API key) and names every room `<team>-...`, so
 *   the fake vendor's record splits by team. A team may send extra headers (`X-Priority: batch`).
 * - **Open loop** (`openLoop(4)`): requests leave on a fixed schedule whatever earlier ones are
 *   doing, as a steady service sends; request i goes to replica i % n.
 * - **Closed loop** (`closedLoop(40)`): callers each with one request in flight, as a batch job
 *   floods; caller i on replica i % n, pausing briefly after any answer but a 201 (an impatient
 *   client, back well before the whole-second Retry-After), as `runLoad` does.
 *
 * `teamRunFigures()` gives per team: requests sent, the share created (201 / sent), rooms per
 * second and share of all rooms over the saturated period (from the fake's record), the latency
 * of the 201s and the statuses; and for the whole run: the most calls in any window (on the fake's
 * monotonic arrival times), vendor refusals, and the budget used.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ZimCode } from '../fake-zim/fake-zim-server.js';
import { densestWindow } from './call-windows.js';
import { createRoom, percentile, vendorCallRoomId, type Answer, type FigureOptions, type VendorCall } from './fleet.js';
import type { GatewayProcess } from './gateway-process.js';

export type Traffic =
  | { readonly kind: 'open-loop'; readonly perSecond: number }
  | { readonly kind: 'closed-loop'; readonly callers: number; readonly pauseAfterRefusalMs: () => number };

/** 200-400 ms: back well before the whole-second Retry-After, as real clients often are. */
export const impatientPause = (): number => 200 + Math.random() * 200;

/** Requests on a fixed schedule, `perSecond` of them each second, whatever earlier ones are doing. */
export function openLoop(perSecond: number): Traffic {
  if (!(perSecond > 0)) throw new Error('an open loop needs a positive rate');
  return { kind: 'open-loop', perSecond };
}

/** `callers` callers, each with one request in flight, pausing after any answer but a 201. */
export function closedLoop(callers: number, pauseAfterRefusalMs: () => number = impatientPause): Traffic {
  if (!Number.isInteger(callers) || callers < 1) throw new Error('a closed loop needs at least one caller');
  return { kind: 'closed-loop', callers, pauseAfterRefusalMs };
}

export interface Team {
  /** The client id in API_KEYS (lower-case letters and digits); its rooms are named `<name>-...`. */
  readonly name: string;
  readonly key: string;
  readonly traffic: Traffic;
  /** Sent with every request of the team, e.g. `{ 'X-Priority': 'batch' }`. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** `caller`: the caller's index in its team (closed loop), or the request's (open loop). */
export interface TeamAnswer extends Answer {
  team: string;
}

export interface TeamLoadOptions {
  gateways: readonly GatewayProcess[];
  teams: readonly Team[];
  /** How long the teams send new requests. */
  durationMs: number;
  /** When this settles first, the teams stop sending then (e.g. a sequence of faults is over). */
  until?: Promise<unknown>;
  /** A request gives up after this long and is recorded as left without an answer. */
  requestTimeoutMs: number;
  /** In every room id, so runs against one fake never repeat an id: 1-8 of A-Z a-z 0-9. */
  runId: string;
}

export interface TeamLoadResult {
  answers: TeamAnswer[];
  teams: readonly Team[];
  /** Wall clock (ms) when the teams started sending. */
  startedAt: number;
  /** Wall clock (ms) when they stopped sending new requests (answers to the last ones may come after). */
  stoppedAt: number;
  /** The most an open-loop request left after its scheduled time (ms): the sender's own lateness. */
  senderMaxLateMs: number;
}

const TEAM_NAME = /^[a-z][a-z0-9]{0,11}$/;
const RUN_ID = /^[A-Za-z0-9]{1,8}$/;

/** Every team's traffic at once, until `durationMs` passed or `until` settled; resolves when every request was answered. */
export async function runTeamLoad(options: TeamLoadOptions): Promise<TeamLoadResult> {
  const names = new Set<string>();
  for (const team of options.teams) {
    if (!TEAM_NAME.test(team.name)) throw new Error(`team name ${team.name}: 1-12 lower-case letters and digits, a letter first`);
    if (names.has(team.name)) throw new Error(`team ${team.name} given twice`);
    names.add(team.name);
  }
  if (!RUN_ID.test(options.runId)) throw new Error('runId: 1-8 of A-Z a-z 0-9');
  if (options.gateways.length === 0) throw new Error('no gateways to send to');

  const answers: TeamAnswer[] = [];
  const startedAt = Date.now();
  let stoppedAt = 0;
  let senderMaxLateMs = 0;
  const stop = (): void => {
    if (stoppedAt === 0) stoppedAt = Date.now();
  };
  const stopTimer = setTimeout(stop, options.durationMs);
  // Stops on a rejection too (a fault sequence that failed); the caller awaits that promise itself.
  options.until?.then(stop, stop);
  const sending = (): boolean => stoppedAt === 0;
  const gateways = options.gateways;

  const send = async (team: Team, caller: number, gatewayIndex: number, roomId: string): Promise<TeamAnswer> => {
    const answer = await createRoom(gateways[gatewayIndex]!.url, team.key, roomId, options.requestTimeoutMs, team.headers);
    const recorded = { ...answer, team: team.name, caller, gateway: gatewayIndex };
    answers.push(recorded);
    return recorded;
  };

  const openLoopTeam = async (team: Team, perSecond: number): Promise<void> => {
    const intervalMs = 1000 / perSecond;
    const start = performance.now();
    const pending: Promise<TeamAnswer>[] = [];
    for (let i = 0; ; i++) {
      const due = start + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (!sending()) break;
      senderMaxLateMs = Math.max(senderMaxLateMs, performance.now() - due);
      pending.push(send(team, i, i % gateways.length, `${team.name}-${options.runId}-${i}`));
    }
    await Promise.all(pending);
  };

  const closedLoopTeam = async (team: Team, callers: number, pause: () => number): Promise<void> => {
    const caller = async (index: number): Promise<void> => {
      for (let n = 0; sending(); n++) {
        const answer = await send(team, index, index % gateways.length, `${team.name}-${options.runId}-${index}-${n}`);
        if (answer.status !== 201 && sending()) await sleep(pause());
      }
    };
    await Promise.all(Array.from({ length: callers }, (_, index) => caller(index)));
  };

  try {
    await Promise.all(
      options.teams.map((team) =>
        team.traffic.kind === 'open-loop'
          ? openLoopTeam(team, team.traffic.perSecond)
          : closedLoopTeam(team, team.traffic.callers, team.traffic.pauseAfterRefusalMs),
      ),
    );
  } finally {
    clearTimeout(stopTimer);
    stop();
  }
  return { answers, teams: options.teams, startedAt, stoppedAt, senderMaxLateMs };
}

/** Every answer is a 201, or a 429 carrying a whole-seconds Retry-After; anything else (no answer included) is returned. */
export function unexpectedAnswers<A extends Answer>(answers: readonly A[]): A[] {
  return answers.filter((a) => !(a.status === 201 || (a.status === 429 && /^[1-9]\d*$/.test(a.retryAfter ?? ''))));
}

// ------------------------------------------------------------------ figures

export interface TeamFigures {
  /** Requests the team sent. */
  sent: number;
  /** Of those, answered 201. */
  created: number;
  /** created / sent. */
  createdShare: number;
  /** Rooms the vendor created for the team per second over the saturated period. */
  roomsPerSecond: number;
  /** The team's part of all rooms created over the saturated period. */
  shareOfRooms: number;
  /** Latency of the team's 201s. */
  createdLatencyP50Ms: number;
  createdLatencyP99Ms: number;
  statuses: Record<string, number>;
  /** Calls of the team the vendor saw over the whole run (retries included). */
  vendorCalls: number;
}

export interface TeamRunFigures {
  teams: Record<string, TeamFigures>;
  vendorCalls: number;
  /** The most calls the vendor saw in any window of `windowMs`, over the whole run (its monotonic clock). */
  maxInAnyWindow: number;
  /** When that window began, ms after the teams started sending (the fake's wall clock): which phase of a run it fell in. */
  densestWindowFromMs: number;
  /** Calls the vendor refused for frequency (660300005). */
  vendorRefusals: number;
  /** Rooms created per second over the saturated period, all teams. */
  roomsPerSecond: number;
  /** roomsPerSecond as a share of the budget. */
  budgetShare: number;
  /** Requests per second all teams sent. */
  offeredPerSecond: number;
  senderMaxLateMs: number;
}

/** The saturated period of a run: from `leadMs` after the start (the queues fill) to when sending stopped. */
export function saturatedPeriod(load: TeamLoadResult, leadMs = 1000): Pick<FigureOptions, 'saturatedFrom' | 'saturatedUntil'> {
  return { saturatedFrom: load.startedAt + leadMs, saturatedUntil: load.stoppedAt };
}

/** The team a room id belongs to (`<team>-...`). */
function teamOf(roomId: string | undefined): string | undefined {
  return roomId?.slice(0, Math.max(0, roomId.indexOf('-'))) || undefined;
}

/** `calls`: the fake's record of this run (sliced from before it started). */
export function teamRunFigures(calls: readonly VendorCall[], load: TeamLoadResult, options: FigureOptions): TeamRunFigures {
  const seconds = (options.saturatedUntil - options.saturatedFrom) / 1000;
  const inPeriod = (c: VendorCall): boolean => c.at >= options.saturatedFrom && c.at < options.saturatedUntil;
  const createdInPeriod = calls.filter((c) => c.code === ZimCode.success && inPeriod(c));
  const teams: Record<string, TeamFigures> = {};
  for (const team of load.teams) {
    const answers = load.answers.filter((a) => a.team === team.name);
    const created = answers.filter((a) => a.status === 201);
    const latencies = created.map((a) => a.latencyMs);
    const rooms = createdInPeriod.filter((c) => teamOf(vendorCallRoomId(c)) === team.name).length;
    const statuses: Record<string, number> = {};
    for (const answer of answers) {
      const label = answer.error ? 'no answer' : String(answer.status);
      statuses[label] = (statuses[label] ?? 0) + 1;
    }
    teams[team.name] = {
      sent: answers.length,
      created: created.length,
      createdShare: answers.length === 0 ? Number.NaN : created.length / answers.length,
      roomsPerSecond: rooms / seconds,
      shareOfRooms: createdInPeriod.length === 0 ? Number.NaN : rooms / createdInPeriod.length,
      createdLatencyP50Ms: percentile(latencies, 0.5),
      createdLatencyP99Ms: percentile(latencies, 0.99),
      statuses,
      vendorCalls: calls.filter((c) => teamOf(vendorCallRoomId(c)) === team.name).length,
    };
  }
  const roomsPerSecond = createdInPeriod.length / seconds;
  const densest = densestWindow(
    calls.map((c) => c.atHr),
    options.windowMs,
  );
  const densestFirst = calls.find((c) => c.atHr === densest.start);
  return {
    teams,
    vendorCalls: calls.length,
    maxInAnyWindow: densest.count,
    densestWindowFromMs: densestFirst ? densestFirst.at - load.startedAt : Number.NaN,
    vendorRefusals: calls.filter((c) => c.code === ZimCode.frequencyLimit).length,
    roomsPerSecond,
    budgetShare: roomsPerSecond / (options.qpsLimit * (1000 / options.windowMs)),
    offeredPerSecond: load.answers.length / ((load.stoppedAt - load.startedAt) / 1000),
    senderMaxLateMs: load.senderMaxLateMs,
  };
}

/** The figures as a few lines of text, one per team, for a spec's or a benchmark's output. */
export function formatTeamRunFigures(figures: TeamRunFigures): string {
  const pad = (cells: Array<string | number>): string =>
    cells.map((cell, i) => String(cell).padEnd(i === 0 ? 10 : 12)).join('');
  const lines = [pad(['team', 'sent', 'created', 'rooms/s', 'of rooms', '201 p50 ms', '201 p99 ms', 'statuses'])];
  for (const [name, f] of Object.entries(figures.teams)) {
    lines.push(
      pad([
        name,
        f.sent,
        `${(f.createdShare * 100).toFixed(1)}%`,
        f.roomsPerSecond.toFixed(2),
        `${(f.shareOfRooms * 100).toFixed(1)}%`,
        f.createdLatencyP50Ms.toFixed(0),
        f.createdLatencyP99Ms.toFixed(0),
        JSON.stringify(f.statuses),
      ]),
    );
  }
  lines.push(
    `whole run: max in any window ${figures.maxInAnyWindow} (from ${(figures.densestWindowFromMs / 1000).toFixed(2)} s), vendor refusals ${figures.vendorRefusals}, ` +
      `${figures.roomsPerSecond.toFixed(2)} rooms/s (${(figures.budgetShare * 100).toFixed(1)}% of the budget), ` +
      `offered ${figures.offeredPerSecond.toFixed(1)}/s, open-loop sender at most ${figures.senderMaxLateMs.toFixed(0)} ms late`,
  );
  return lines.join('\n');
}
