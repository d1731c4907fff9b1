/**
 * The loopback capture harness (loopback-capture.ts), which the fleet specs count the cap on: it
 * sees every POST to its port once and nothing else, its timestamps fall between a request's
 * sending and the fake's record of it, and while the fake vendor is frozen (SIGSTOP) the kernel
 * still sees the requests arrive, spaced, that the fake stamps together afterwards, and the fake
 * reports its stall (GET /_fake/stalls).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { FLEET_APP_ID, startFakeZimProcess, type FakeZimProcess, type VendorCall } from './fleet.js';
import { stopAllGateways } from './gateway-process.js';
import { closedPort } from './ports.js';
import { startLoopbackCapture, stopAllLoopbackCaptures, type KernelArrival } from './loopback-capture.js';
import { createTestCertificate, type TestCertificate } from './test-certificate.js';

const SECRET = 'SENTINEL-secret-capture-6a1f0c9e3b7d2854';
const TIMEOUT = 30_000;

let fake: FakeZimProcess;
let otherFake: FakeZimProcess;
let port: number;
let requests = 0;

beforeAll(async () => {
  [fake, otherFake] = await Promise.all([startFakeZimProcess(FLEET_APP_ID, SECRET), startFakeZimProcess(FLEET_APP_ID, SECRET)]);
  port = Number(new URL(fake.url).port);
}, TIMEOUT);

afterAll(async () => {
  await stopAllLoopbackCaptures();
  await stopAllGateways();
});

/** A POST to the vendor endpoint, told apart by its nonce (the fake records it, unsigned as it is). */
async function post(baseUrl: string, options: { freshConnection?: boolean } = {}): Promise<{ nonce: string; sentAt: number }> {
  const nonce = `n${++requests}`;
  const sentAt = Date.now();
  const response = await fetch(`${baseUrl}/?Action=CreateRoom&SignatureNonce=${nonce}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(options.freshConnection ? { Connection: 'close' } : {}) },
    body: '{}',
  });
  await response.text();
  return { nonce, sentAt };
}

const nonceOf = (arrival: KernelArrival): string | null => new URLSearchParams((arrival.target ?? '').split('?')[1]).get('SignatureNonce');

async function recordedCalls(nonces: readonly string[]): Promise<Map<string, VendorCall>> {
  const calls = await fake.calls();
  return new Map(calls.filter((c) => nonces.includes(c.query?.SignatureNonce ?? '')).map((c) => [c.query!.SignatureNonce!, c]));
}

describe('the loopback capture', () => {
  it('sees every POST to its port once, on kept and fresh connections, and no other request', async () => {
    const capture = await startLoopbackCapture({ port });
    const sent = [];
    for (let i = 0; i < 20; i++) sent.push(await post(fake.url, { freshConnection: i % 4 === 0 }));
    sent.push(...(await Promise.all(Array.from({ length: 10 }, () => post(fake.url)))));
    // Neither a GET to the port nor a POST to another port is a request it looks for.
    await fake.calls();
    await post(otherFake.url);
    const arrivals = await capture.stop();

    expect(arrivals.map(nonceOf).sort()).toEqual(sent.map((s) => s.nonce).sort());
    expect(capture.droppedByKernel()).toBe(0);
  }, TIMEOUT);

  it("stamps each request between its sending and the fake's record of it", async () => {
    const capture = await startLoopbackCapture({ port });
    const sent = [];
    for (let i = 0; i < 10; i++) {
      sent.push(await post(fake.url));
      await sleep(20);
    }
    const arrivals = await capture.stop();
    const calls = await recordedCalls(sent.map((s) => s.nonce));

    // Date.now() has whole milliseconds, the kernel microseconds: one millisecond either way.
    const outside = sent.flatMap(({ nonce, sentAt }) => {
      const kernelAt = arrivals.find((a) => nonceOf(a) === nonce)?.at ?? Number.NaN;
      const fakeAt = calls.get(nonce)?.at ?? Number.NaN;
      return kernelAt >= sentAt - 1 && kernelAt <= fakeAt + 1 ? [] : [{ nonce, sentAt, kernelAt, fakeAt }];
    });
    expect(outside).toEqual([]);
  }, TIMEOUT);

  it('sees the requests a frozen fake has not read yet, which the fake stamps together once it runs again, and reports the stall', async () => {
    const capture = await startLoopbackCapture({ port });
    const FROZEN_MS = 400;
    const pending: Array<Promise<{ nonce: string; sentAt: number }>> = [];
    let resumedAt = 0;
    process.kill(fake.process.pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 5; i++) {
        pending.push(post(fake.url));
        await sleep(50);
      }
      await sleep(FROZEN_MS - 250);
    } finally {
      resumedAt = Date.now();
      process.kill(fake.process.pid, 'SIGCONT');
    }
    const sent = await Promise.all(pending);
    const arrivals = await capture.stop();
    const calls = await recordedCalls(sent.map((s) => s.nonce));
    const kernelTimes = sent.map(({ nonce }) => arrivals.find((a) => nonceOf(a) === nonce)?.at ?? Number.NaN);
    const fakeTimes = sent.map(({ nonce }) => calls.get(nonce)?.at ?? Number.NaN);
    const span = (times: number[]): number => Math.max(...times) - Math.min(...times);
    const { stalls } = await fake.stalls();

    // The kernel saw every request while the fake was frozen; the fake stamped them all after.
    expect(Math.max(...kernelTimes)).toBeLessThan(resumedAt);
    expect(Math.min(...fakeTimes)).toBeGreaterThanOrEqual(resumedAt - 1);
    expect(span(fakeTimes)).toBeLessThan(span(kernelTimes));
    // Its watch reported a stall about as long as the freeze, ending as it stamped them.
    const stall = stalls.find((s) => s.ms >= FROZEN_MS - 100 && s.endedAt >= resumedAt - 1);
    expect(stall).toBeDefined();
  }, TIMEOUT);

  describe('over TLS', () => {
    let certificate: TestCertificate;
    let tlsFake: FakeZimProcess;
    beforeAll(async () => {
      certificate = await createTestCertificate();
      tlsFake = await startFakeZimProcess(FLEET_APP_ID, SECRET, { tls: { certFile: certificate.certPath, keyFile: certificate.keyPath } });
    }, TIMEOUT);
    afterAll(() => certificate?.remove());

    /** A signed-size POST over HTTPS (kept-alive unless fresh), resolved once answered. */
    function postTls(agent: https.Agent, nonce: string, fresh: boolean): Promise<number> {
      const sentAt = Date.now();
      const query = `Action=CreateRoom&SignatureNonce=${nonce}&Signature=${'0'.repeat(64)}&Timestamp=1765000000&AppId=1`;
      return new Promise((resolve, reject) => {
        const request = https.request(
          `${tlsFake.url}/?${query}`,
          { method: 'POST', agent, ca: certificate.certPem, headers: { 'Content-Type': 'application/json', ...(fresh ? { Connection: 'close' } : {}) } },
          (response) => {
            response.resume();
            response.on('end', () => resolve(sentAt));
          },
        );
        request.on('error', reject);
        request.end(JSON.stringify({ RoomId: nonce, RoomName: 'a room of a realistic size' }));
      });
    }

    it('counts each request once by the record that carries it: no handshake, alert or marker among them', async () => {
      const capture = await startLoopbackCapture({ port: Number(new URL(tlsFake.url).port), tls: true });
      const agent = new https.Agent({ keepAlive: true });
      const sentAt: number[] = [];
      try {
        for (let i = 0; i < 12; i++) sentAt.push(await postTls(agent, `t${i}`, i % 3 === 0));
      } finally {
        agent.destroy();
      }
      const arrivals = await capture.stop();
      const calls = (await tlsFake.calls()).filter((c) => c.query?.SignatureNonce?.startsWith('t'));

      expect(arrivals).toHaveLength(sentAt.length);
      expect(arrivals.every((a) => a.target === undefined)).toBe(true);
      // One at a time: the n-th record is the n-th request, between its sending and the fake's stamp.
      const outside = arrivals.filter((a, i) => !(a.at >= sentAt[i]! - 1 && a.at <= calls[i]!.at + 1));
      expect(outside).toEqual([]);
    }, TIMEOUT);
  });

  it('refuses to start, naming its marker, when no request can reach the port to prove the capture live', async () => {
    // Nothing listens there: the marker's connection is refused, and no segment carries it.
    await expect(startLoopbackCapture({ port: await closedPort() })).rejects.toThrow(/start marker/);
  }, TIMEOUT);
});
