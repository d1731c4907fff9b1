/**
 * The gateway's warm vendor connections, end to end (the built gateway against the fake ZIM): a
 * call that comes after a quiet spell finds a warm connection at its slot, whenever it comes. The
 * one connection kept warm between calls closes for idling every ZEGO_KEEPALIVE_IDLE_MS, and its
 * replacement must be up before then: a call in the gap would trade its slot for a later one (or,
 * with a long queue ahead, be refused).
 */
import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRoom } from './support/fleet.js';
import { metricSum, scrapeMetrics } from './support/prometheus-text.js';
import { scenario } from './support/scenario.js';

const APP_ID = 1618033988;
const SECRET = 'SENTINEL-secret-warm-5c1e9a7d3b2f4806';
const KEY = 'sk-SENTINEL-warm-0e6b3d9f1a7c5248';
const KEEP_ALIVE_IDLE_MS = 1000;

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET },
  apiKeys: { 'svc-warm': KEY },
  env: { ZEGO_DEFAULT_FROM_USER_ID: 'warm-operator', ZEGO_KEEPALIVE_IDLE_MS: String(KEEP_ALIVE_IDLE_MS) },
});
const gw = s.gatewayBeforeAll();

describe('warm vendor connections', () => {
  it('has one ready at the slot of every call after a quiet spell, wherever the spell ends in the keep-alive cycle', async () => {
    const callsBefore = s.fake.calls.length;
    // Quiet spells longer than the idle time, each ending at another point of the connection's
    // cycle (a replacement's gap of 300 ms in a cycle of about 1300 ms met about a quarter of them).
    const spellsMs = [1050, 1190, 1330, 1110, 1250, 1390, 1080, 1220, 1360, 1140];
    for (const [i, spellMs] of spellsMs.entries()) {
      await sleep(spellMs);
      const answer = await createRoom(gw.url, KEY, `warm-${i}`, 10_000);
      expect({ i, status: answer.status }).toEqual({ i, status: 201 });
    }
    expect(s.fake.calls.length - callsBefore).toBe(spellsMs.length);
    const metrics = await scrapeMetrics(gw.url);
    expect(metricSum(metrics, 'zim_gateway_outbound_unready_slots_total')).toBe(0);
    // Every connection was opened ahead, none on a call's path.
    expect(metricSum(metrics, 'zim_gateway_vendor_connect_seconds_count', { when: 'on_path' })).toBe(0);
  }, 45_000);
});
