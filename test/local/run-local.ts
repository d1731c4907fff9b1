/**
 * `npm run local`: the gateway against the fake ZIM vendor on this machine, with a fresh demo API
 * key printed once. Nothing here is used in production.
 */
import { randomBytes } from 'node:crypto';
import { FakeZimServer } from '../fake-zim/fake-zim-server.js';
import { apiKeyEntry } from '../support/api-keys.js';
import { npmStartNodeOptions, startGateway } from '../support/gateway-process.js';

const APP_ID = 1234567890;

async function main(): Promise<void> {
  const port = process.env.PORT ?? '3000';
  const fakePort = Number(process.env.FAKE_ZIM_PORT ?? 8089);
  // A throwaway secret shared by the fake vendor and the gateway; it dies with this process.
  const secret = randomBytes(16).toString('hex');
  const demoKey = `demo_${randomBytes(18).toString('base64url')}`;

  const fake = new FakeZimServer({ appId: APP_ID, serverSecret: secret });
  await fake.start(fakePort);

  // Started as `npm start` starts it: an OTEL_EXPORTER_OTLP_ENDPOINT in this shell turns tracing on.
  const otel = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[0].startsWith('OTEL_') && entry[1] !== undefined));
  const gateway = await startGateway(
    {
      ...otel,
      PORT: port,
      ZEGO_APP_ID: String(APP_ID),
      ZEGO_SERVER_SECRET: secret,
      ZEGO_API_BASE_URL: fake.url,
      ZEGO_DEFAULT_FROM_USER_ID: 'ops-bot',
      API_KEYS: apiKeyEntry('demo', demoKey),
    },
    { nodeOptions: npmStartNodeOptions() },
  );

  process.stdout.write(
    [
      '',
      `fake ZIM vendor:  ${fake.url}  (recorded calls: ${fake.url}/_fake/calls)`,
      `gateway:          ${gateway.url}`,
      `demo API key:     ${demoKey}`,
      '',
      'Create a room:',
      `  curl -s -X POST ${gateway.url}/rooms -H 'Authorization: Bearer ${demoKey}' \\`,
      `    -H 'Content-Type: application/json' \\`,
      `    -d '{"roomId":"room-42","roomName":"Design review","attributes":[{"key":"topic","value":"q3","autoDelete":true}]}'`,
      '',
      'Create three rooms in the background (a batch; without Redis it lives in this process only):',
      `  curl -s -i -X POST ${gateway.url}/rooms/batches -H 'Authorization: Bearer ${demoKey}' \\`,
      `    -H 'Content-Type: application/json' \\`,
      `    -d '{"rooms":[{"roomId":"class-1"},{"roomId":"class-2","roomName":"Chemistry"},{"roomId":"class-3"}]}'`,
      'Read it (the batchId is in the answer and its Location header):',
      `  curl -s ${gateway.url}/rooms/batches/<batchId> -H 'Authorization: Bearer ${demoKey}'`,
      '',
      'Ctrl-C stops both.',
      '',
    ].join('\n'),
  );

  let stopping = false;
  const shutdown = async (): Promise<void> => {
    stopping = true;
    await gateway.stop();
    await fake.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
  const status = await gateway.exited;
  if (stopping) return; // Ctrl-C: shutdown() finishes and exits
  process.stderr.write(`gateway exited (code ${status.code}):\n${gateway.stderr()}\n`);
  await fake.stop();
  process.exit(1);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
