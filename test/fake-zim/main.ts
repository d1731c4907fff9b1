/**
 * Entry point: runs a FakeZimServer as its own process, for the gateway's local run and for
 * multi-process tests (which drive it through the /_fake/ control API).
 *
 *   npx tsc -p tsconfig.dev.json && node dist-dev/fake-zim/main.js
 *
 * Environment:
 *   FAKE_ZIM_PORT (8089), FAKE_ZIM_HOST (127.0.0.1), ZEGO_APP_ID (required),
 *   ZEGO_SERVER_SECRET or ZEGO_SERVER_SECRET_FILE (required), FAKE_ZIM_QPS_LIMIT (20),
 *   FAKE_ZIM_ROOM_QUOTA (unlimited).
 *   FAKE_ZIM_ANSWER_MS (none): every vendor call waits this long before its answer, the vendor's
 *     work plus the round trip of a real network; `50`, or `100-300` for a uniformly random time
 *     in that range per call.
 *   FAKE_ZIM_KEEPALIVE_MS (Node's, 5000): idle connections are closed after this long (Node adds
 *     a fixed second), as a vendor or its load balancer does to the sockets a client keeps warm;
 *     0 never closes them.
 *   FAKE_ZIM_TLS_CERT_FILE and FAKE_ZIM_TLS_KEY_FILE (both or neither; plain HTTP): PEM files to
 *     serve HTTPS with, as the vendor does (the TLS handshake and its resumption are part of what a
 *     connection costs). A client trusts a self-signed one with NODE_EXTRA_CA_CERTS.
 *   The answer time and the keep-alive timeout can be changed at run time through the control API
 *   (PUT /_fake/answer-time, PUT /_fake/keep-alive; see fake-zim-server.ts).
 *   Stalls of this process's event loop are watched and listed at GET /_fake/stalls.
 * The secret and the key are never printed.
 */
import { readFileSync } from 'node:fs';
import {
  assertAnswerTimeRange,
  FakeZimServer,
  MAX_TIMER_MS,
  type AnswerTimeRange,
  type FakeZimOptions,
} from './fake-zim-server.js';

function fail(message: string): never {
  process.stderr.write(`fake ZIM: ${message}\n`);
  process.exit(1);
}

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(`${name} must be an integer between ${min} and ${max}`);
  }
  return value;
}

function answerTimeFromEnv(): AnswerTimeRange | undefined {
  const raw = (process.env.FAKE_ZIM_ANSWER_MS ?? '').trim();
  if (raw === '') return undefined;
  const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(raw);
  const range = match ? { minMs: Number(match[1]), maxMs: Number(match[2] ?? match[1]) } : null;
  try {
    assertAnswerTimeRange(range);
    return range;
  } catch {
    fail(
      'FAKE_ZIM_ANSWER_MS must be a time in ms (e.g. 50) or a range min-max (e.g. 100-300), ' +
        `with min <= max <= ${MAX_TIMER_MS}`,
    );
  }
}

function keepAliveFromEnv(): number | undefined {
  const raw = process.env.FAKE_ZIM_KEEPALIVE_MS;
  if (raw === undefined || raw.trim() === '') return undefined;
  return intFromEnv('FAKE_ZIM_KEEPALIVE_MS', 0, 0, MAX_TIMER_MS);
}

function readTlsFile(name: string): string {
  try {
    return readFileSync(process.env[name]!, 'utf8');
  } catch (err) {
    // The error names the variable, not the content.
    fail(`cannot read ${name}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function tlsFromEnv(): FakeZimOptions['tls'] {
  const certSet = (process.env.FAKE_ZIM_TLS_CERT_FILE ?? '') !== '';
  const keySet = (process.env.FAKE_ZIM_TLS_KEY_FILE ?? '') !== '';
  if (certSet !== keySet) fail('set both FAKE_ZIM_TLS_CERT_FILE and FAKE_ZIM_TLS_KEY_FILE, or neither');
  if (!certSet) return undefined;
  return { cert: readTlsFile('FAKE_ZIM_TLS_CERT_FILE'), key: readTlsFile('FAKE_ZIM_TLS_KEY_FILE') };
}

function readSecret(): string {
  const inline = process.env.ZEGO_SERVER_SECRET;
  if (inline !== undefined && inline !== '') return inline;
  const file = process.env.ZEGO_SERVER_SECRET_FILE;
  if (file === undefined || file === '') fail('set ZEGO_SERVER_SECRET or ZEGO_SERVER_SECRET_FILE');
  let secret: string;
  try {
    // Files usually end with a newline that is not part of the secret.
    secret = readFileSync(file, 'utf8').trim();
  } catch (err) {
    // The error names the path, not the content.
    fail(`cannot read ZEGO_SERVER_SECRET_FILE: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (secret === '') fail('ZEGO_SERVER_SECRET_FILE is empty');
  return secret;
}

async function main(): Promise<void> {
  if (!process.env.ZEGO_APP_ID) fail('set ZEGO_APP_ID');
  const appId = intFromEnv('ZEGO_APP_ID', 0, 0, 0xffffffff);
  const port = intFromEnv('FAKE_ZIM_PORT', 8089, 0, 65535);
  const host = process.env.FAKE_ZIM_HOST || '127.0.0.1';
  const qpsLimit = intFromEnv('FAKE_ZIM_QPS_LIMIT', 20, 1, Number.MAX_SAFE_INTEGER);
  const roomQuota = process.env.FAKE_ZIM_ROOM_QUOTA
    ? intFromEnv('FAKE_ZIM_ROOM_QUOTA', 0, 0, Number.MAX_SAFE_INTEGER)
    : Infinity;

  const server = new FakeZimServer({
    appId,
    serverSecret: readSecret(),
    qpsLimit,
    roomQuota,
    answerTimeMs: answerTimeFromEnv(),
    keepAliveTimeoutMs: keepAliveFromEnv(),
    tls: tlsFromEnv(),
    // Its own process: a stall of this loop is the fake's, and fleet specs ask for it.
    watchEventLoop: true,
  });
  await server.start(port, host);

  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => fail(`stop failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // The same "listening on port N" line as the gateway's, so one launcher starts both; printed
  // only once the handlers are set, since a launcher that reads it may stop the fake at once.
  process.stdout.write(`fake ZIM listening on port ${server.port} (${server.url})\n`);
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
