/**
 * End to end, against the real built gateway: a client that sends bodies of thousands of keys at a
 * steady rate, with a valid key, costs its neighbours nothing. A probe polls GET /health/live
 * beside the load; its latency beside hostile bodies is compared with its latency beside valid
 * bodies sent at the same rate. Ratios only: the machine's speed is not the point.
 *
 * The hostile bodies stay within their routes' byte limits, so that it is the key bounds that
 * refuse them: 8,000 unknown keys in one object on POST /rooms (64 KB), and 50,000 in one room
 * of a POST /rooms/batches body (400 KB, under that route's 4 MiB). Without the bounds, the
 * transformation of such an object costs the square of its keys.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from '@jest/globals';
import { scenario } from './support/scenario.js';

const APP_ID = 1732050807;
const SECRET = 'hostile-load-secret-5c3e9a17d20b84f6';
const KEY = 'sk-hostile-load-8b1f4e7d2c09a653';
/**
 * Each hostile kind's rate: well within what parsing it costs anyway (JSON.parse of 400 KB holding
 * an object of 50,000 keys takes tens of ms on its own), and far beyond what the gateway could
 * keep up with if the bounds did not refuse it before transformation.
 */
const EIGHT_THOUSAND_PER_SECOND = 20;
const FIFTY_THOUSAND_PER_SECOND = 2;
const PHASE_MS = 5_000;
const PROBE_EVERY_MS = 20;
/** Beside hostile bodies, the probe's median may be this many times its median beside valid ones. */
const MAX_SLOWDOWN = 3;
/** Medians below this count as this much: 1 ms against 3 ms is noise, not a slowdown. */
const NOISE_FLOOR_MS = 2;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET, qpsLimit: 1_000_000 },
  apiKeys: { 'svc-hostile-load': KEY },
  env: {
    ZEGO_DEFAULT_FROM_USER_ID: 'ops-hostile-load',
    CLIENT_RATE_LIMIT: '100000',
    ZEGO_QPS_LIMIT: '10000',
    RATE_LIMIT_REPLICAS: '1',
    ZEGO_MAX_ATTEMPTS: '1',
    LOG_LEVEL: 'error',
  },
});
const gw = s.gatewayBeforeAll();

/** `{"0":0,"1":0,…,"a":0,…}`: `count` short unknown keys, about 8 bytes each. */
function unknownKeys(count: number): string {
  return `{${Array.from({ length: count }, (_, i) => `"${i.toString(36)}":0`).join(',')}}`;
}

const EIGHT_THOUSAND_KEYS = unknownKeys(8_000);
const FIFTY_THOUSAND_KEYS = `{"rooms":[${unknownKeys(50_000)}]}`;
let roomCounter = 0;

interface Sent {
  status: number;
  answerBytes: number;
  ms: number;
}

interface PhaseResult {
  /** The probe's latencies, ms. */
  probes: number[];
  sent: Sent[];
}

async function send(path: string, body: string, signal: AbortSignal): Promise<Sent> {
  const started = performance.now();
  const response = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body,
    signal,
  });
  const answer = await response.arrayBuffer();
  return { status: response.status, answerBytes: answer.byteLength, ms: performance.now() - started };
}

/** One GET /health/live: its latency, ms (NaN when it failed). */
async function probe(signal: AbortSignal): Promise<number> {
  const started = performance.now();
  try {
    const response = await fetch(`${gw.url}/health/live`, { signal });
    await response.arrayBuffer();
    return response.status === 200 ? performance.now() - started : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Calls `start` every `everyMs` until `endsAt`, without waiting for what it started (a steady rate, not a closed loop). */
async function steadily<T>(everyMs: number, endsAt: number, start: () => Promise<T>): Promise<Array<Promise<T>>> {
  const started: Array<Promise<T>> = [];
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (performance.now() >= endsAt) {
        clearInterval(timer);
        resolve();
      } else started.push(start());
    }, everyMs);
  });
  return started;
}

/**
 * Sends `body()` to `path` `perSecond` times a second for PHASE_MS while the probe polls
 * /health/live every PROBE_EVERY_MS, each at its steady rate whatever the answers take, so that a
 * stalled gateway shows in every probe it holds up. What is still unanswered 10 s after the phase
 * is abandoned and counts as failed.
 */
async function phase(perSecond: number, path: string, body: () => string): Promise<PhaseResult> {
  const abandon = new AbortController();
  const endsAt = performance.now() + PHASE_MS;
  const [sending, probing] = await Promise.all([
    steadily(1000 / perSecond, endsAt, () =>
      send(path, body(), abandon.signal).catch(() => ({ status: 0, answerBytes: 0, ms: Number.NaN })),
    ),
    steadily(PROBE_EVERY_MS, endsAt, () => probe(abandon.signal)),
  ]);
  const abandonTimer = setTimeout(() => abandon.abort(), 10_000);
  try {
    const [sent, probes] = await Promise.all([Promise.all(sending), Promise.all(probing)]);
    return { sent, probes: probes.map((ms) => (Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms)) };
  } finally {
    clearTimeout(abandonTimer);
  }
}

const validRoom = (): string => JSON.stringify({ roomId: `hostile-load-${++roomCounter}`, roomName: 'neighbour' });

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

const summary = (name: string, result: PhaseResult): string =>
  `${name}: probe p50 ${median(result.probes).toFixed(2)} ms, p90 ${percentile(result.probes, 90).toFixed(2)} ms ` +
  `(${result.probes.length} probes); sent p50 ${median(result.sent.map((x) => x.ms)).toFixed(1)} ms, ` +
  `answers ${[...new Set(result.sent.map((x) => x.status))].join('/')} of at most ${Math.max(...result.sent.map((x) => x.answerBytes))} bytes`;

describe('hostile bodies at a steady rate, a probe beside them', () => {
  it('the probe is no more than a few times slower than beside valid bodies at the same rate', async () => {
    expect(Buffer.byteLength(EIGHT_THOUSAND_KEYS)).toBeLessThan(64 * 1024);
    await phase(EIGHT_THOUSAND_PER_SECOND, '/rooms', validRoom); // warm-up: connections, JIT
    // Each hostile phase against valid bodies at its rate just before it: the machine's load drifts.
    const validBeforeEight = await phase(EIGHT_THOUSAND_PER_SECOND, '/rooms', validRoom);
    const eightThousand = await phase(EIGHT_THOUSAND_PER_SECOND, '/rooms', () => EIGHT_THOUSAND_KEYS);
    const validBeforeFifty = await phase(FIFTY_THOUSAND_PER_SECOND, '/rooms', validRoom);
    const fiftyThousand = await phase(FIFTY_THOUSAND_PER_SECOND, '/rooms/batches', () => FIFTY_THOUSAND_KEYS);
    process.stdout.write(
      [
        summary(`valid at ${EIGHT_THOUSAND_PER_SECOND}/s`, validBeforeEight),
        summary(`8,000 keys (64 KB) at ${EIGHT_THOUSAND_PER_SECOND}/s`, eightThousand),
        summary(`valid at ${FIFTY_THOUSAND_PER_SECOND}/s`, validBeforeFifty),
        summary(`50,000 keys (400 KB batch) at ${FIFTY_THOUSAND_PER_SECOND}/s`, fiftyThousand),
      ].join('\n') + '\n',
    );

    const allowed = (valid: PhaseResult): number => MAX_SLOWDOWN * Math.max(median(valid.probes), NOISE_FLOOR_MS);
    expect(median(eightThousand.probes)).toBeLessThanOrEqual(allowed(validBeforeEight));
    expect(median(fiftyThousand.probes)).toBeLessThanOrEqual(allowed(validBeforeFifty));
    // Refused by the key bounds, in a short answer: not by a byte limit (413), not after validation.
    for (const hostile of [eightThousand, fiftyThousand]) {
      expect(new Set(hostile.sent.map((x) => x.status))).toEqual(new Set([400]));
      expect(Math.max(...hostile.sent.map((x) => x.answerBytes))).toBeLessThan(1024);
    }
    for (const valid of [validBeforeEight, validBeforeFifty]) expect(new Set(valid.sent.map((x) => x.status))).toEqual(new Set([201]));
  }, 120_000);
});
