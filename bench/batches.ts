/**
 * `npm run bench:batches`: one 1000-room batch drained by three gateway replicas sharing one Redis,
 * the fake ZIM vendor in its own process. Prints the drain time next to the ideal at the
 * configured budget, 1000 / (limit x 1000 / (window + margin)) seconds (the fastest any scheduler
 * may go at the vendor's door), and their ratio. Then drains another 1000 rooms with an
 * interactive client at 5 requests per second alongside, and prints that client's p50 and p99.
 *
 * BENCH_ROOMS (default 1000) sets the batch size.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchClient, roomsNamed } from '../test/support/batch-client.js';
import { FLEET_APP_ID, startFakeZimProcess, startReplicas, waitForLimiterMode, warmUp } from '../test/support/fleet.js';
import { stopAllGateways, type GatewayProcess } from '../test/support/gateway-process.js';
import { startPrivateRedis, stopAllRedis } from '../test/support/redis-server.js';
import { openLoop, runTeamLoad, unexpectedAnswers } from '../test/support/team-load.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECRET = 'bench-secret-not-a-real-one-4b1e';
const CLIENTS = { bulk: 'bench-key-bulk-0001', web: 'bench-key-web-0002' } as const;
const LIMIT = 20;
const WINDOW_MS = 1000;
const MARGIN_MS = 30;
const ROOMS = Number(process.env.BENCH_ROOMS ?? 1000);
const IDEAL_S = ROOMS / ((LIMIT * 1000) / (WINDOW_MS + MARGIN_MS));

const out = (text: string): void => void process.stdout.write(`${text}\n`);

interface Drain {
  seconds: number;
  created: number;
  failed: number;
  web?: { p50: number; p99: number; created: number; sent: number };
}

async function drain(gateways: GatewayProcess[], label: string, withWeb: boolean): Promise<Drain> {
  out(`draining ${ROOMS} rooms (${label}) ...`);
  const client = batchClient(gateways[0]!, CLIENTS.bulk);
  const accepted = await client.submit({ rooms: roomsNamed(`${label}-${Date.now().toString(36)}`, ROOMS) });
  if (accepted.status !== 202) throw new Error(`the batch was not accepted: ${accepted.status} ${JSON.stringify(accepted.body)}`);
  const { batchId } = accepted.body as { batchId: string };
  const ending = batchClient(gateways[1]!, CLIENTS.bulk).untilEnded(batchId, IDEAL_S * 3000);
  const web = withWeb
    ? await runTeamLoad({
        gateways,
        teams: [{ name: 'web', key: CLIENTS.web, traffic: openLoop(5) }],
        durationMs: IDEAL_S * 3000,
        until: ending,
        requestTimeoutMs: 15_000,
        runId: Date.now().toString(36).slice(-6),
      })
    : undefined;
  const ended = await ending;
  const seconds = (Date.parse(ended.finishedAt!) - Date.parse(ended.createdAt)) / 1000;
  const result: Drain = { seconds, created: ended.created, failed: ended.failed };
  if (web) {
    const unexpected = unexpectedAnswers(web.answers);
    if (unexpected.length > 0) out(`  web: ${unexpected.length} answers neither 201 nor 429 with Retry-After`);
    const latencies = web.answers.filter((a) => a.status === 201).map((a) => a.latencyMs).sort((a, b) => a - b);
    const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
    result.web = { p50: at(0.5), p99: at(0.99), created: latencies.length, sent: web.answers.length };
  }
  return result;
}

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const fake = await startFakeZimProcess(FLEET_APP_ID, SECRET, path.join(ROOT, 'dist-bench/test/fake-zim/main.js'));
  const drains: Array<[string, Drain]> = [];
  try {
    const gateways = await startReplicas({
      replicas: 3,
      secret: SECRET,
      clients: CLIENTS,
      fakeUrl: fake.url,
      script: path.join(ROOT, 'dist/main.js'),
      env: {
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: `bench-${Date.now()}`,
        CLIENT_RATE_LIMIT: '1000',
        BATCH_MAX_ROOMS: String(Math.max(1000, ROOMS)),
        ZEGO_QPS_LIMIT: String(LIMIT),
        ZEGO_QPS_WINDOW_MS: String(WINDOW_MS),
        RATE_LIMIT_SAFETY_MARGIN_MS: String(MARGIN_MS),
      },
    });
    await Promise.all(gateways.map((gateway) => waitForLimiterMode(gateway, 'shared')));
    await warmUp(gateways, CLIENTS.web, `warm${Date.now()}`);
    drains.push(['batch alone', await drain(gateways, 'alone', false)]);
    drains.push(['beside web 5/s', await drain(gateways, 'beside', true)]);
  } finally {
    await stopAllGateways();
    await fake.process.stop();
    await stopAllRedis();
  }

  const cpus = os.cpus();
  out(
    `\nmachine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  );
  out(`scenario: 3 replicas, one ${ROOMS}-room batch, budget ${LIMIT} calls per ${WINDOW_MS} ms + ${MARGIN_MS} ms margin`);
  out(`ideal drain at that budget: ${IDEAL_S.toFixed(1)} s\n`);
  out(['run'.padEnd(18), 'drain s'.padEnd(10), 'ideal s'.padEnd(10), 'ideal/drain'.padEnd(13), 'created'.padEnd(9), 'failed'.padEnd(8), 'web p50 ms'.padEnd(12), 'web p99 ms'].join(''));
  for (const [label, d] of drains) {
    out(
      [
        label.padEnd(18),
        d.seconds.toFixed(1).padEnd(10),
        IDEAL_S.toFixed(1).padEnd(10),
        (IDEAL_S / d.seconds).toFixed(3).padEnd(13),
        String(d.created).padEnd(9),
        String(d.failed).padEnd(8),
        (d.web ? d.web.p50.toFixed(0) : '-').padEnd(12),
        d.web ? `${d.web.p99.toFixed(0)} (${d.web.created}/${d.web.sent} created)` : '-',
      ].join(''),
    );
  }
}

main().catch(async (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopAllGateways();
  await stopAllRedis();
  process.exit(1);
});
