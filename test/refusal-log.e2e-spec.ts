/**
 * End to end, against the real built gateway: a refusal storm is not a log storm. The first
 * refusal of a kind per second is logged in full, the rest counted into one summary line, with
 * true counts; a request that reached the vendor (201, 502) keeps its full line in the middle of
 * the flood, and LOG_REFUSALS=all logs each refusal.
 */
import { describe, expect, it } from '@jest/globals';
import { waitFor } from './support/async-probes.js';
import type { GatewayProcess, LogLine } from './support/gateway-process.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1414213562;
const SECRET = 'SENTINEL-secret-refusal-log-5d2a8c0f7e1b';
const FLOOD_KEY = 'sk-SENTINEL-refusal-flood-8b1e4c7a0d93f265';
const CALM_KEY = 'sk-SENTINEL-refusal-calm-2f7c0a9e6b15d483';

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { flood: FLOOD_KEY, calm: CALM_KEY },
  env: {
    CLIENT_RATE_LIMITS: 'flood:1,calm:1000',
    ZEGO_MAX_ATTEMPTS: '1',
    ZEGO_DEFAULT_FROM_USER_ID: 'refusal-log',
    // Thousands of refusals in a second or two: answered at once, not held (a subject of its own).
    CLIENT_QUOTA_REFUSAL_DELAY_MS: '0',
  },
});
let counter = 0;

async function post(gateway: GatewayProcess, key: string, requestId: string): Promise<number> {
  const response = await fetch(`${gateway.url}/rooms`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', 'X-Request-Id': requestId },
    body: JSON.stringify({ roomId: `refusal-${++counter}` }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** `total` requests of the flooding client, `concurrency` at a time; the statuses answered. */
async function flood(gateway: GatewayProcess, total: number, concurrency = 16): Promise<number[]> {
  const statuses: number[] = [];
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < total) {
      sent++;
      statuses.push(await post(gateway, FLOOD_KEY, `flood-${counter}`));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

const requestLines = (g: GatewayProcess, status: number): LogLine[] =>
  g.logLines().filter((l) => l.context === 'RequestLog' && l.clientId === 'flood' && l.status === status);
const summaries = (g: GatewayProcess): LogLine[] =>
  g.logLines().filter((l) => l.context === 'RefusalSummary' && l.clientId === 'flood' && l.status === 429);

describe('refusal log sampling (LOG_REFUSALS=sampled, the default)', () => {
  const gw = s.gatewayBeforeAll();

  it('a flood of 2000 refusals writes a few dozen lines whose counts add up; a 201 and a 502 amid it keep theirs', async () => {
    const flooding = flood(gw, 2000);
    await waitFor(() => requestLines(gw, 429).length > 0, { what: 'the flood is refused' });
    const created = await post(gw, CALM_KEY, 'calm-201');
    s.fake.injectFault({ kind: 'http500', times: 1 });
    const failed = await post(gw, CALM_KEY, 'calm-502');
    const statuses = await flooding;

    expect([created, failed]).toEqual([201, 502]);
    const refused = statuses.filter((x) => x === 429).length;
    expect(refused).toBeGreaterThan(1900);
    // Every full line stands for itself; a summary's count includes the full line of its interval.
    const counted = (): number =>
      requestLines(gw, 429).length - summaries(gw).length + summaries(gw).reduce((sum, l) => sum + Number(l.count), 0);
    await waitFor(() => counted() >= refused, { what: 'the last summary is written', timeoutMs: 5_000 });
    expect(counted()).toBe(refused);
    expect(requestLines(gw, 429).length + summaries(gw).length).toBeLessThanOrEqual(40);
    expect(summaries(gw)[0]).toEqual(
      expect.objectContaining({
        level: 'warn',
        reason: 'client quota',
        message: expect.stringMatching(/^client flood: \d+ x 429 client quota in the last 1 s/),
      }),
    );
    for (const requestId of ['calm-201', 'calm-502']) {
      expect(gw.logLines().filter((l) => l.context === 'RequestLog' && l.requestId === requestId)).toHaveLength(1);
    }
    // The metrics still count every refusal.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.startsWith('zim_gateway_http_requests_total{') && l.includes('status="429"') && l.includes('client="flood"'));
    expect(Number(line?.split(' ').at(-1))).toBe(refused);
  }, 60_000);
});

describe('LOG_REFUSALS=all', () => {
  const gw = s.gatewayBeforeAll({ LOG_REFUSALS: 'all' });

  it('logs each refusal in full and writes no summary', async () => {
    const statuses = await flood(gw, 200);
    const refused = statuses.filter((x) => x === 429).length;
    expect(refused).toBeGreaterThan(150);
    await waitFor(() => requestLines(gw, 429).length >= refused, { what: 'every refusal is logged' });
    expect(requestLines(gw, 429)).toHaveLength(refused);
    expect(summaries(gw)).toHaveLength(0);
  }, 60_000);
});
