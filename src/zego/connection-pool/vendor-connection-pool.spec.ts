import { afterEach, describe, expect, it } from '@jest/globals';
import { Logger, type LoggerService } from '@nestjs/common';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { until } from '../../../test/support/async-probes.js';
import { closedPort } from '../../../test/support/ports.js';
import { TcpProxy } from '../../../test/support/tcp-proxy.js';
import { VendorConnectionPool, type Departure, type VendorConnectionObserver } from './vendor-connection-pool.js';

interface VendorStandIn {
  url: string;
  connections: () => number;
  /** When each request arrived (performance.now(): the test's own clock). */
  arrivals: number[];
  close: () => Promise<void>;
}

/** A vendor stand-in: answers every POST after `answerMs`, records arrivals and counts the connections it accepted. */
async function vendor(answerMs = 0): Promise<VendorStandIn> {
  let connections = 0;
  const arrivals: number[] = [];
  const server = http.createServer((request, response) => {
    arrivals.push(performance.now());
    request.resume();
    request.on('end', () => setTimeout(() => response.end('{"Code":0}'), answerMs));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    connections: () => connections,
    arrivals,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Measured {
  connected: Array<{ ms: number; when: 'ahead' | 'on-path' }>;
  wired: number[];
  answered: number[];
}

function poolFor(url: string, options: { keepAliveIdleMs?: number; safetyMarginMs?: number } = {}): { pool: VendorConnectionPool; measured: Measured } {
  const measured: Measured = { connected: [], wired: [], answered: [] };
  const observer: VendorConnectionObserver = {
    connected: (ms, when) => measured.connected.push({ ms, when }),
    wired: (ms) => measured.wired.push(ms),
    answered: (ms) => measured.answered.push(ms),
  };
  const pool = new VendorConnectionPool({
    baseUrl: url,
    keepAliveIdleMs: options.keepAliveIdleMs ?? 4000,
    budgetPerSecond: 20,
    safetyMarginMs: options.safetyMarginMs ?? 30,
    observer,
  });
  cleanups.push(() => pool.onModuleDestroy());
  return { pool, measured };
}

async function proxied(target: string, setupDelayMs: number): Promise<{ url: string; proxy: TcpProxy }> {
  const { hostname, port } = new URL(target);
  const proxy = new TcpProxy({ host: hostname, port: Number(port) }, { setupDelayMs });
  const proxyPort = await proxy.listen();
  cleanups.push(() => proxy.close());
  return { url: `http://127.0.0.1:${proxyPort}/`, proxy };
}

/** One POST through the pool's agent, as this departure's request. */
function post(pool: VendorConnectionPool, departure: Departure, url: string): Promise<number> {
  return departure.send(
    () =>
      new Promise<number>((resolve, reject) => {
        const request = http.request(url, { method: 'POST', agent: pool.agent }, (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        });
        request.on('error', reject);
        request.end('{}');
      }),
  );
}

/** Waits for the slot as a limiter would, and asks the departure at it. */
async function atSlot(departure: Departure, slotInMs: number): Promise<boolean> {
  const slotAt = performance.now() + slotInMs;
  departure.expect(slotAt);
  await sleep(Math.max(0, slotAt - performance.now()));
  return departure.ready();
}

describe('VendorConnectionPool', () => {
  it('never lets a call leave on a connection whose first bytes a proxy still holds (250 ms), with calls overlapping', async () => {
    const fake = await vendor(200);
    cleanups.push(fake.close);
    const { url } = await proxied(fake.url, 250);
    const { pool, measured } = poolFor(url);
    void pool.onApplicationBootstrap();

    // The pool, the proxy and the vendor stand-in share this process: a stall of its event loop
    // delays an arrival whatever the pool did, so the allowance is the margin plus the worst stall.
    // A call sent on a connection the proxy still holds would be up to 250 ms late.
    const stalls = monitorEventLoopDelay({ resolution: 5 });
    stalls.enable();
    // A slot every 50 ms, each granted 60 ms ahead (the fleet's horizon); answers of 200 ms keep
    // four or five calls in flight, so new connections are needed as the calls come.
    const results = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        await sleep(i * 50);
        const departure = pool.departure();
        const slotAt = performance.now() + 60;
        const ready = await atSlot(departure, slotAt - performance.now());
        const sentAt = performance.now();
        if (ready) await post(pool, departure, url);
        departure.done();
        return { ready, slotAt, sentAt };
      }),
    );
    stalls.disable();
    const sent = results.filter((r) => r.ready);
    // Each arrival against its own call's slot (arrivals come in the order the calls went).
    const lateness = fake.arrivals.map((arrival, i) => arrival - sent[i]!.slotAt);
    const worstStallMs = stalls.max / 1e6;
    expect({ late: lateness.filter((ms) => ms > 30 + worstStallMs), worstStallMs }).toEqual({ late: [], worstStallMs });
    expect(fake.arrivals).toHaveLength(sent.length);
    // Once the pool is warm, calls go at their slots.
    expect(sent.length).toBeGreaterThanOrEqual(20);
    expect(measured.connected.filter((c) => c.when === 'on-path')).toEqual([]);
    expect(measured.wired).toHaveLength(sent.length);
    expect(measured.answered).toHaveLength(sent.length);
  });

  it('says a call is not ready at its slot when no connection is idle, and is ready once one is up', async () => {
    const fake = await vendor();
    cleanups.push(fake.close);
    const { url } = await proxied(fake.url, 250);
    const { pool } = poolFor(url);

    const departure = pool.departure();
    // A slot right now: the connection the pool opens for it takes 250 ms.
    expect(await atSlot(departure, 0)).toBe(false);
    expect(pool.stats().connecting).toBeGreaterThanOrEqual(1);
    await until(() => departure.ready(), 'a connection is idle', 5_000);
    expect(await post(pool, departure, url)).toBe(200);
    departure.done();
  });

  it('keeps enough connections for overlapping calls: every call of a burst finds an idle one at its slot', async () => {
    const fake = await vendor(200);
    cleanups.push(fake.close);
    const { url } = await proxied(fake.url, 80);
    const { pool, measured } = poolFor(url);
    void pool.onApplicationBootstrap();
    await until(() => pool.stats().idle === 1, 'the first connection is up');

    // Slots 50 ms apart, answers of 200 ms: four or five calls in flight at once.
    const calls = Array.from({ length: 12 }, async (_, i) => {
      const departure = pool.departure();
      const ready = await atSlot(departure, 300 + i * 50);
      const status = ready ? await post(pool, departure, url) : 0;
      departure.done();
      return { ready, status };
    });
    const results = await Promise.all(calls);
    expect(results.filter((r) => !r.ready)).toEqual([]);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(measured.connected.filter((c) => c.when === 'on-path')).toEqual([]);
    expect(pool.stats().idle + pool.stats().busy).toBeLessThanOrEqual(pool.stats().limit);
  });

  it('closes connections idle for ZEGO_KEEPALIVE_IDLE_MS and keeps one warm between calls, its replacement warm before it closes', async () => {
    const fake = await vendor();
    cleanups.push(fake.close);
    const { pool, measured } = poolFor(fake.url, { keepAliveIdleMs: 1200 });
    const first = pool.departure();
    first.expect(performance.now());
    await until(() => first.ready(), 'a connection is idle');
    expect(await post(pool, first, fake.url)).toBe(200);
    first.done();
    const afterCall = fake.connections();

    // Quiet for three keep-alive idle times: the connection kept warm is replaced twice or more,
    // each replacement up and settled (300 ms over plain HTTP) before the one it replaces closes,
    // so a call at any moment would find an idle connection.
    const gaps: number[] = [];
    let mostOnceQuiet = 0;
    let openedBeforeQuiet = 0;
    const quietFrom = performance.now() + 2400;
    const quietUntil = performance.now() + 3600;
    while (performance.now() < quietUntil) {
      const { idle, busy, connecting } = pool.stats();
      if (idle === 0) gaps.push(Math.round(performance.now()));
      if (performance.now() < quietFrom) openedBeforeQuiet = fake.connections();
      else mostOnceQuiet = Math.max(mostOnceQuiet, idle + busy + connecting);
      await sleep(5);
    }
    expect(gaps).toEqual([]);
    expect(fake.connections() - afterCall).toBeGreaterThanOrEqual(2);
    // Two idle times after the call, the spares it wanted are gone. Each connection is replaced
    // twice the lead (640 ms here) before it closes, about every 560 ms: at most the one kept warm,
    // its replacement, and the next one while the first still closes; no more than three opened.
    expect(mostOnceQuiet).toBeLessThanOrEqual(3);
    expect(fake.connections() - openedBeforeQuiet).toBeLessThanOrEqual(3);

    const next = pool.departure();
    next.expect(performance.now());
    expect(next.ready()).toBe(true);
    expect(await post(pool, next, fake.url)).toBe(200);
    next.done();
    expect(measured.connected.filter((c) => c.when === 'on-path')).toEqual([]);
  });

  it('starts once its first connection can carry a call: a call at once is ready at its slot', async () => {
    const fake = await vendor();
    cleanups.push(fake.close);
    const { pool, measured } = poolFor(fake.url);
    await pool.onApplicationBootstrap();
    expect(pool.stats().idle).toBe(1);
    const departure = pool.departure();
    expect(await atSlot(departure, 0)).toBe(true);
    expect(await post(pool, departure, fake.url)).toBe(200);
    departure.done();
    expect(measured.connected.filter((c) => c.when === 'on-path')).toEqual([]);
  });

  it('starts without a warm connection when the vendor refuses it, and before its wait is up', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/`;
    const { pool } = poolFor(url);
    const startedAt = performance.now();
    await pool.onApplicationBootstrap();
    // The wait's bound is 3 s; a refused connection ends it as soon as it is known.
    expect(performance.now() - startedAt).toBeLessThan(3000);
    expect(pool.stats().idle).toBe(0);
  });

  it('lets a call through at once when the vendor cannot be reached, so it fails fast instead of waiting out its slots', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/`;
    const { pool } = poolFor(url);
    const departure = pool.departure();
    departure.expect(performance.now());
    await until(() => departure.ready(), 'the failed attempt is known', 5_000);
    await expect(post(pool, departure, url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    departure.done();
  });

  it('warns, naming RATE_LIMIT_SAFETY_MARGIN_MS, when calls reach the wire later after their slots than half the margin', async () => {
    const warnings: string[] = [];
    const capture: LoggerService = { log: () => {}, error: () => {}, warn: (message: unknown) => void warnings.push(String(message)) };
    Logger.overrideLogger(capture);
    cleanups.push(() => Logger.overrideLogger(true));
    const fake = await vendor();
    cleanups.push(fake.close);
    // A wide margin: only a stall of 100 ms between the slot and the wire would warn of the call on time.
    const { pool } = poolFor(fake.url, { safetyMarginMs: 200 });

    const onTime = pool.departure();
    onTime.expect(performance.now());
    await until(() => onTime.ready(), 'a connection is idle');
    // Sent at once (the slot is now): within the margin, no warning.
    onTime.expect(performance.now());
    expect(await post(pool, onTime, fake.url)).toBe(200);
    onTime.done();
    expect(warnings).toEqual([]);

    const late = pool.departure();
    await until(() => late.ready(), 'a connection is idle');
    // Its slot was 400 ms ago: twice the whole margin.
    late.expect(performance.now() - 400);
    expect(await post(pool, late, fake.url)).toBe(200);
    late.done();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('RATE_LIMIT_SAFETY_MARGIN_MS');
    expect(warnings[0]).toContain('from a slot to the wire');
  });

  it("tells the slot's limiter when the request reached the wire: after it was handed over, before the vendor had it", async () => {
    const fake = await vendor();
    cleanups.push(fake.close);
    const { pool } = poolFor(fake.url);
    const departure = pool.departure();
    const wiredAt: number[] = [];
    departure.taken((at) => wiredAt.push(at));
    expect(await atSlot(departure, 0)).toBe(false);
    await until(() => departure.ready(), 'a connection is idle');
    const handedAt = performance.now();
    expect(await post(pool, departure, fake.url)).toBe(200);
    departure.done();
    expect(wiredAt).toHaveLength(1);
    expect(wiredAt[0]).toBeGreaterThanOrEqual(handedAt);
    expect(wiredAt[0]).toBeLessThanOrEqual(fake.arrivals[0]!);
  });

  it('learns a longer hidden set-up from a first exchange the path held, and lets spares settle that long', async () => {
    const fake = await vendor();
    cleanups.push(fake.close);
    const { url, proxy } = await proxied(fake.url, 0);
    const { pool } = poolFor(url, { keepAliveIdleMs: 1000 });
    const call = async (): Promise<void> => {
      const departure = pool.departure();
      departure.expect(performance.now());
      await until(() => departure.ready(), 'a warm connection', 5_000);
      await post(pool, departure, url);
      departure.done();
    };
    // Kept-alive answers to compare with.
    for (let i = 0; i < 25; i++) await call();
    expect(pool.stats().hiddenSetupMs).toBe(300);

    // From now on the path holds each new connection's first bytes 600 ms, longer than assumed.
    proxy.shape({ setupDelayMs: 600 });
    // The connections up now are closed (replaced ahead, they would have been opened before the
    // change and idled long enough to hide it): the pool's next ones are held at the proxy.
    const openedBefore = proxy.stats().opened;
    proxy.cut('refuse');
    proxy.restore();
    await until(() => proxy.stats().opened > openedBefore, 'a connection opened through the changed path', 5_000);
    // The connection kept warm is new: its first call waits at the proxy, and the pool learns.
    await call();
    expect(pool.stats().hiddenSetupMs).toBeGreaterThan(300);
    expect(pool.stats().hiddenSetupMs).toBeLessThanOrEqual(600);
  });
});
