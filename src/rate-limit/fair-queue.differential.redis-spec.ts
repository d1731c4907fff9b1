/**
 * The fair queue exists twice: FairQueue (one process, and each replica's share while Redis is
 * down) and lua/schedule-outbound.lua (the fleet). This spec replays the same traces on both and
 * asserts that they serve the same tickets in the same order, at the same slots, and answer every
 * arrival alike (queued, served at once, or refused, with the same estimate).
 *
 * Time: the script takes its clock from Redis TIME unless a caller passes `clockMs` (only this
 * spec does), so both sides run on one logical clock. A budget of one call per W milliseconds
 * makes every `slot` step of a trace one slot: the script is called as that slot enters its
 * horizon H and grants at most one; FairQueue is driven the way LocalOutboundRateLimiter drives it
 * (a caller that finds nobody waiting and the slot free is served at once, callers whose wait ran
 * out leave before the slot is given), with slot arithmetic from slot-schedule.ts.
 *
 * A failure prints fast-check's seed (replay it with FAIR_QUEUE_SEED=<seed>), the shrunk trace one
 * step a line, and both sides' answers from the first one that differs. FAIR_QUEUE_RUNS sets how
 * many traces are generated (1500: a few seconds; rare cases such as a credit that sums to just
 * under one need that many).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { RedisClients } from '../../test/support/redis-clients.js';
import { startPrivateRedis, stopAllRedis, type TestRedis } from '../../test/support/redis-server.js';
import { RedisKeys } from '../redis/redis-keys.js';
import { FairQueue, type FairRequest, type FairTicket } from './fair-queue.js';
import type { Priority } from './rate-limit.settings.js';
import {
  parseScheduleReply,
  SCHEDULE_SCRIPT,
  scheduleScriptKeys,
  scheduleScriptRules,
  type ScheduleReply,
  type ScheduleScriptRules,
} from './redis-outbound-rate-limiter.js';
import { nextSlot, type SlotRules } from './slot-schedule.js';

/** One slot per W ms: each `slot` step is one slot. */
const W = 1000;
/** The script grants a slot once it is this close; the steps call it exactly then. */
const H = 400;
/** Where the logical clock starts (any time works: nothing reads the real one). */
const T0 = 1_000_000;
const ONE_SLOT: SlotRules = { limit: 1, windowMs: W, safetyMarginMs: 0 };
const CLIENTS = ['a', 'b', 'c', 'd'];
const RUNS = Number(process.env.FAIR_QUEUE_RUNS ?? 1500);

interface Arrive {
  readonly kind: 'arrive';
  readonly client: string;
  readonly priority: Priority;
  /** A retried late slot: first in its client's line, charged nothing. */
  readonly front: boolean;
  /** How long the caller may wait; it gives up after that. */
  readonly maxWaitMs: number;
}
/** The caller of the n-th arrival (counted from 0, modulo the arrivals so far) hangs up. */
interface Cancel {
  readonly kind: 'cancel';
  readonly arrival: number;
}
/** The clock moves on to when the next slot enters the horizon. */
interface Slot {
  readonly kind: 'slot';
}
type Step = Arrive | Cancel | Slot;

interface Trace {
  readonly minShare: number;
  readonly weights: Readonly<Record<string, number>>;
  readonly steps: readonly Step[];
}

function describeStep(step: Step): string {
  switch (step.kind) {
    case 'arrive':
      return `arrive ${step.client} ${step.priority}${step.front ? ' front' : ''} wait ${step.maxWaitMs}`;
    case 'cancel':
      return `cancel arrival ${step.arrival}`;
    case 'slot':
      return 'slot';
  }
}

/** A trace one step a line, repeated steps once with a count. */
function describeTrace(trace: Trace): string {
  const weights = Object.entries(trace.weights).map(([client, weight]) => `${client}:${weight}`);
  const lines: Array<{ text: string; count: number }> = [];
  for (const text of trace.steps.map(describeStep)) {
    const last = lines[lines.length - 1];
    if (last?.text === text) last.count++;
    else lines.push({ text, count: 1 });
  }
  const steps = lines.map(({ text, count }) => (count > 1 ? `${text} ×${count}` : text));
  return [`minShare ${trace.minShare}, weights ${weights.join(' ')}`, ...steps].join('\n  ');
}

/** What one side says at each step, one line each: what two agreeing schedulers say alike. */
type Answers = string[];

/** One scheduler replaying a trace; `at` is the logical clock, in ms. */
interface Replay {
  /** The arrival's answer, and the tickets served by the dispatch it caused. */
  arrive(at: number, id: string, request: FairRequest, maxWaitMs: number): Promise<{ answer: string; served: Served[] }>;
  cancel(at: number, id: string): Promise<void>;
  /** The tickets served at the slot entering the horizon at `at` (one at most). */
  slot(at: number): Promise<Served[]>;
}

interface Served {
  readonly id: string;
  /** The slot, from T0. */
  readonly slot: number;
}

/** cjson writes numbers with 14 significant digits (%.14g): FairQueue's are written alike. */
const rounded = (value: number): string => String(Number(value.toPrecision(14)));

async function replay(trace: Trace, side: Replay): Promise<Answers> {
  const answers: Answers = [];
  const arrivals: string[] = [];
  let at = T0;
  /** The newest slot this side gave, from T0. */
  let lastSlot = Number.NEGATIVE_INFINITY;
  const record = (served: Served[]): void => {
    for (const { id, slot } of served) {
      answers.push(`  served ${id} at ${slot}`);
      lastSlot = Math.max(lastSlot, slot);
    }
  };
  for (const step of trace.steps) {
    if (step.kind === 'slot') {
      // On to when the next slot enters the horizon; a whole slot on if it already has (nobody waited).
      const entersAt = T0 + lastSlot + W - H;
      at = entersAt > at ? entersAt : at + W;
      answers.push(`slot step at ${at - T0}`);
      record(await side.slot(at));
    } else if (step.kind === 'cancel') {
      if (arrivals.length === 0) continue;
      const id = arrivals[step.arrival % arrivals.length]!;
      answers.push(`cancel ${id}`);
      await side.cancel(at, id);
    } else {
      const id = `t${arrivals.length}`;
      arrivals.push(id);
      const request = { client: step.client, weight: trace.weights[step.client] ?? 1, priority: step.priority, front: step.front };
      const { answer, served } = await side.arrive(at, id, request, step.maxWaitMs);
      answers.push(`${id} (${describeStep(step)}): ${answer}`);
      record(served);
    }
  }
  return answers;
}

/** FairQueue, driven as LocalOutboundRateLimiter drives it, on the logical clock. */
class FairQueueReplay implements Replay {
  private readonly queue: FairQueue<string>;
  private readonly tickets = new Map<string, { ticket: FairTicket<string>; giveUpAt: number }>();
  private readonly releases: number[] = [];

  constructor(minShare: number) {
    this.queue = new FairQueue(minShare);
  }

  arrive(at: number, id: string, request: FairRequest, maxWaitMs: number): Promise<{ answer: string; served: Served[] }> {
    this.giveUp(at);
    const slot = nextSlot(this.releases, at, ONE_SLOT);
    const estimate = slot - at + this.queue.slotsBefore(request) * W;
    if (estimate > maxWaitMs) return Promise.resolve({ answer: `refused, estimate ${rounded(estimate)}`, served: [] });
    if (this.queue.size === 0 && slot <= at + H) {
      this.queue.servedAtOnce(request);
      this.releases.push(slot);
      return Promise.resolve({ answer: `granted, estimate ${rounded(estimate)}`, served: [{ id, slot: slot - T0 }] });
    }
    this.tickets.set(id, { ticket: this.queue.push(request, id), giveUpAt: at + maxWaitMs });
    return Promise.resolve({ answer: `queued, estimate ${rounded(estimate)}`, served: this.dispatch(at) });
  }

  cancel(at: number, id: string): Promise<void> {
    this.giveUp(at);
    const waiting = this.tickets.get(id);
    if (waiting) this.queue.remove(waiting.ticket);
    return Promise.resolve();
  }

  slot(at: number): Promise<Served[]> {
    this.giveUp(at);
    return Promise.resolve(this.dispatch(at));
  }

  /** Callers whose wait ends before `time` have left (the limiter's deadline timers). */
  private giveUp(time: number): void {
    for (const [id, { ticket, giveUpAt }] of this.tickets) {
      if (giveUpAt < time) {
        this.queue.remove(ticket);
        this.tickets.delete(id);
      }
    }
  }

  /** Every slot within the horizon goes to the next ticket in fair order. */
  private dispatch(at: number): Served[] {
    const served: Served[] = [];
    for (;;) {
      const slot = nextSlot(this.releases, at, ONE_SLOT);
      if (slot > at + H) return served;
      this.giveUp(slot);
      const ticket = this.queue.shift();
      if (!ticket) return served;
      this.tickets.delete(ticket.value);
      this.releases.push(slot);
      served.push({ id: ticket.value, slot: slot - T0 });
    }
  }
}

/** The schedule script on a private Redis, one replica, called as the gateway calls it but at logical times. */
class LuaReplay implements Replay {
  private readonly keys: string[];
  private readonly rules: ScheduleScriptRules;
  /** Trace ids by ticket member, and the members still waiting as far as this replica knows. */
  private readonly ids = new Map<string, string>();
  private readonly waiting = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    trace: Trace,
    budget: number,
  ) {
    this.keys = scheduleScriptKeys(new RedisKeys('differential').outboundBudget(budget));
    this.rules = scheduleScriptRules({
      ...ONE_SLOT,
      horizonMs: H,
      slowRoundTripMs: 75,
      leaseMs: 60_000,
      memoryMs: 60_000,
      batchMinShare: trace.minShare,
      weightOf: (client) => trace.weights[client] ?? 1,
    });
  }

  async arrive(at: number, id: string, request: FairRequest, maxWaitMs: number): Promise<{ answer: string; served: Served[] }> {
    const level = request.priority === 'batch' ? 'b' : 'i';
    const ticket = { id, client: request.client, weight: request.weight, level, maxWaitMs, front: request.front ?? false, replacing: '' };
    const reply = await this.run(at, { ticket });
    const answer = reply.ticket!;
    if (answer.state !== 'refused') {
      this.ids.set(answer.id, id);
      if (answer.state === 'queued') this.waiting.set(id, answer.id);
    }
    const served = answer.state === 'granted' ? [{ id, slot: at + answer.slot! - T0 }] : [];
    return { answer: `${answer.state}, estimate ${rounded(answer.estimate!)}`, served: [...served, ...this.grants(at, reply)] };
  }

  async cancel(at: number, id: string): Promise<void> {
    const member = this.waiting.get(id);
    if (member === undefined) return;
    this.waiting.delete(id);
    await this.run(at, { cancel: [member] });
  }

  async slot(at: number): Promise<Served[]> {
    return this.grants(at, await this.run(at, {}));
  }

  private grants(at: number, reply: ScheduleReply): Served[] {
    return reply.grants.map(([member, offset]) => {
      const id = this.ids.get(member)!;
      this.waiting.delete(id);
      return { id, slot: at + offset - T0 };
    });
  }

  private async run(at: number, body: Record<string, unknown>): Promise<ScheduleReply> {
    const request = { replica: 'replay', rules: this.rules, waiting: [...this.waiting.values()], clockMs: at, ...body };
    return parseScheduleReply(await SCHEDULE_SCRIPT.run(this.redis, this.keys, [JSON.stringify(request)]));
  }
}

/** Both sides' answers from the first line they differ on (with a little context before it). */
function divergence(fairQueue: Answers, lua: Answers): string | undefined {
  const length = Math.max(fairQueue.length, lua.length);
  const first = Array.from({ length }, (_, i) => i).find((i) => fairQueue[i] !== lua[i]);
  if (first === undefined) return undefined;
  const from = Math.max(0, first - 6);
  const show = (answers: Answers): string => answers.slice(from).map((line, i) => `${from + i === first ? '>' : ' '} ${line}`).join('\n');
  return `FairQueue and the Lua scheduler differ at answer ${first}:\n--- FairQueue\n${show(fairQueue)}\n--- Lua\n${show(lua)}`;
}

// ------------------------------------------------------------------ traces

const slots = (count: number): Slot[] => Array.from({ length: count }, () => ({ kind: 'slot' }));
const weight = fc.oneof(fc.constantFrom(1, 2, 3, 0.5), fc.integer({ min: 1, max: 5000 }).map((n) => n / 1000));
const arrive: fc.Arbitrary<Arrive> = fc.record({
  kind: fc.constant('arrive' as const),
  client: fc.constantFrom(...CLIENTS),
  priority: fc.constantFrom<Priority>('interactive', 'interactive', 'batch'),
  front: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  // Often a whole number of slots, or that and part or all of a horizon: ending at a slot, inside
  // its horizon, or as it enters it, where the two sides could part. Patient callers keep queues
  // long, so that batch waits beside interactive for many slots.
  maxWaitMs: fc.oneof(
    { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 25 }), fc.constantFrom(0, H / 2, H, W - H)).map(([slots, extra]) => slots * W + extra) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 25 * W }) },
    { weight: 2, arbitrary: fc.constant(100 * W) },
  ),
});
const cancel: fc.Arbitrary<Cancel> = fc.record({ kind: fc.constant('cancel' as const), arrival: fc.nat({ max: 100 }) });
/** Steps come in runs: one arrival, a burst of alike ones (a flood builds queues), a few slots, a hang-up. */
const stepRun: fc.Arbitrary<Step[]> = fc.oneof(
  { weight: 5, arbitrary: arrive.map((one) => [one]) },
  { weight: 2, arbitrary: fc.tuple(arrive, fc.integer({ min: 2, max: 12 })).map(([one, count]) => Array<Step>(count).fill(one)) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 6 }).map((count) => slots(count)) },
  { weight: 1, arbitrary: cancel.map((one) => [one]) },
);
const traces: fc.Arbitrary<Trace> = fc
  .record({
    // RATE_LIMIT_BATCH_MIN_SHARE takes up to four decimals; the common ones come often.
    minShare: fc.oneof(fc.constantFrom(0.1, 0.2, 0.25, 0.3, 0.5), fc.integer({ min: 1, max: 9999 }).map((n) => n / 10_000)),
    weights: fc.record(Object.fromEntries(CLIENTS.map((client) => [client, weight])) as Record<string, fc.Arbitrary<number>>),
    steps: fc.array(stepRun, { minLength: 1, maxLength: 30 }).map((runs) => runs.flat()),
  })
  .map((trace) => Object.assign(trace, { [fc.toStringMethod]: () => describeTrace(trace) }));

// Hand-written traces for the cases named in the README.
const arrival = (client: string, options: Partial<Omit<Arrive, 'kind' | 'client'>> = {}): Arrive => ({
  kind: 'arrive',
  client,
  priority: 'interactive',
  front: false,
  maxWaitMs: 100 * W,
  ...options,
});
const repeated = (count: number, make: () => Arrive): Arrive[] => Array.from({ length: count }, make);
const batch = { priority: 'batch' } as const;

/** Hand-written traces, with who each slot goes to. */
const named: Array<{ name: string; trace: Trace; served: string[] }> = [
  {
    name: 'two equal clients alternate, each in its own order of arrival',
    trace: { minShare: 0.1, weights: {}, steps: [...repeated(3, () => arrival('a')), ...repeated(2, () => arrival('b')), ...slots(5)] },
    served: ['a', 'b', 'a', 'b', 'a'],
  },
  {
    name: 'weights 3 and 1 share three to one',
    trace: { minShare: 0.1, weights: { a: 3 }, steps: [...repeated(7, () => arrival('a')), ...repeated(3, () => arrival('b')), ...slots(9)] },
    served: ['a', 'a', 'a', 'b', 'a', 'a', 'a', 'b', 'a', 'b'],
  },
  {
    name: 'batch gets a tenth of the slots beside interactive: the tenth slot (0.1 ten times is a whole credit)',
    trace: { minShare: 0.1, weights: {}, steps: [...repeated(12, () => arrival('people')), ...repeated(2, () => arrival('nightly', batch)), ...slots(13)] },
    // The first is served at once; then nine queued slots go to people, and the tenth to batch.
    served: [...Array<string>(10).fill('people'), 'nightly', 'people', 'people', 'nightly'],
  },
  {
    name: 'a caller that gives up costs its client nothing',
    trace: {
      minShare: 0.1,
      weights: {},
      steps: [arrival('x'), ...repeated(3, () => arrival('a')), ...repeated(2, () => arrival('b')), { kind: 'cancel', arrival: 1 }, { kind: 'cancel', arrival: 2 }, ...slots(3)],
    },
    // a's third caller finishes where its first would have: the tie with b's first goes to it, having come first.
    served: ['x', 'a', 'b', 'b'],
  },
  {
    name: 'a batch caller whose wait ends before its slot does not spend batch’s credit',
    trace: {
      minShare: 0.5,
      weights: {},
      // The first nightly caller queues while no interactive one waits (a short estimate), and
      // gives up as batch's credit comes whole: between the call for slot 2000 and that slot.
      steps: [arrival('people'), arrival('nightly', { ...batch, maxWaitMs: 2 * W - H / 2 }), arrival('nightly', batch), ...repeated(4, () => arrival('people')), ...slots(5)],
    },
    served: ['people', 'people', 'nightly', 'people', 'people', 'people'],
  },
  {
    name: 'a retried late slot goes first, at no charge',
    trace: { minShare: 0.1, weights: {}, steps: [arrival('x'), arrival('a'), arrival('b'), arrival('b'), arrival('b', { front: true }), ...slots(4)] },
    served: ['x', 'b', 'a', 'b', 'b'],
  },
  {
    name: 'a caller served at once, nobody waiting, is charged as if it had queued',
    // Uncharged, a's queued caller would tie with b's and go first, having come first.
    trace: { minShare: 0.1, weights: {}, steps: [arrival('a'), ...slots(1), arrival('a'), ...slots(1), arrival('a'), arrival('a'), arrival('b'), ...slots(2)] },
    served: ['a', 'a', 'a', 'b', 'a'],
  },
];

// ------------------------------------------------------------------ the spec

const clients = new RedisClients();
let server: TestRedis;
let redis: Redis;
let budgets = 0;

/** Replays a trace on both sides (each trace on a budget of its own); the answers of both. */
async function replayBoth(trace: Trace): Promise<{ fairQueue: Answers; lua: Answers }> {
  const lua = new LuaReplay(redis, trace, ++budgets);
  return { fairQueue: await replay(trace, new FairQueueReplay(trace.minShare)), lua: await replay(trace, lua) };
}

const servedClients = (trace: Trace, answers: Answers): string[] => {
  const clientOf = trace.steps.filter((step): step is Arrive => step.kind === 'arrive').map((step) => step.client);
  return answers.flatMap((line) => /^ {2}served t(\d+)/.exec(line)?.[1] ?? []).map((n) => clientOf[Number(n)]!);
};

describe('FairQueue and lua/schedule-outbound.lua serve the same traces in the same order', () => {
  beforeAll(async () => {
    server = await startPrivateRedis();
    redis = clients.plain(server.url);
  });

  afterAll(async () => {
    await clients.closeAll();
    await stopAllRedis();
  });

  it.each(named)('$name', async ({ trace, served }) => {
    const { fairQueue, lua } = await replayBoth(trace);
    expect(divergence(fairQueue, lua)).toBeUndefined();
    expect(servedClients(trace, fairQueue)).toEqual(served);
  });

  it(`for ${RUNS} generated traces: arrivals, weights, both levels, hang-ups and waits that run out`, async () => {
    const seed = process.env.FAIR_QUEUE_SEED === undefined ? undefined : Number(process.env.FAIR_QUEUE_SEED);
    await fc.assert(
      fc.asyncProperty(traces, async (trace) => {
        const { fairQueue, lua } = await replayBoth(trace);
        const difference = divergence(fairQueue, lua);
        if (difference !== undefined) throw new Error(difference);
      }),
      { numRuns: RUNS, seed },
    );
  }, 120_000);
});
