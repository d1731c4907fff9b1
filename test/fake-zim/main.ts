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
 * The secret is never printed.
 */
import { readFileSync } from 'node:fs';
import { FakeZimServer } from './fake-zim-server.js';

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

  const server = new FakeZimServer({ appId, serverSecret: readSecret(), qpsLimit, roomQuota });
  await server.start(port, host);
  // The same "listening on port N" line as the gateway's, so one launcher starts both.
  process.stdout.write(`fake ZIM listening on port ${server.port} (${server.url})\n`);

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
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
