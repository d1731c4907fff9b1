/**
 * Entry point: a client that loops without backoff, as a runaway job does: `FLOOD_CONNECTIONS`
 * keep-alive connections, each sending `POST /rooms` again the moment its answer came, whatever
 * the answer (autocannon). Every request is valid and names a room of its own,
 * `<FLOOD_ROOM_PREFIX>-<n>`, so what its quota let through can be counted at the vendor.
 * Started and stopped by flood-load.ts, as its own process: the load must not share an event loop
 * (nor a core) with the test that measures its neighbours.
 *
 * It runs from source: Node strips the types, so the tests and the benchmarks use this one file
 * whatever build they run from. Hence no imports of this repository's modules (their specifiers
 * name the compiled `.js`), only Node's and autocannon.
 *
 * Environment: FLOOD_TARGET_URL (the base URL, e.g. `http://127.0.0.1:3000`), FLOOD_API_KEY (sent
 * as a Bearer token; from the environment so that no command line carries it), FLOOD_CONNECTIONS
 * (100), FLOOD_ROOM_PREFIX, FLOOD_DURATION_MS (none: until stopped).
 *
 * Prints `flood answered` once the first answer came, and when it ends (its duration over, or
 * SIGTERM or SIGINT) one JSON line, its FloodReport (statuses counted, never a key or a body),
 * then exits.
 */
import autocannon from 'autocannon';

function fail(message: string): never {
  process.stderr.write(`flood load: ${message}\n`);
  process.exit(1);
}

function required(name: string): string {
  const value = process.env[name] ?? '';
  if (value === '') fail(`set ${name}`);
  return value;
}

const target = required('FLOOD_TARGET_URL');
const key = required('FLOOD_API_KEY');
const prefix = required('FLOOD_ROOM_PREFIX');
const connections = Number(process.env.FLOOD_CONNECTIONS ?? '100');
if (!Number.isInteger(connections) || connections < 1) fail('FLOOD_CONNECTIONS must be a positive whole number');
/** Until stopped: autocannon wants a duration, and no flood here lasts an hour. */
const UNTIL_STOPPED_MS = 3_600_000;
const durationMs = Number(process.env.FLOOD_DURATION_MS || UNTIL_STOPPED_MS);
if (!(durationMs > 0)) fail('FLOOD_DURATION_MS must be a positive number');
let roomNumber = 0;

const instance = autocannon(
  {
    url: `${target}/rooms`,
    method: 'POST',
    connections,
    pipelining: 1,
    duration: durationMs / 1000,
    timeout: 10,
    // A stop takes effect at the next sample: 100 ms rather than the default second.
    sampleInt: 100,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ roomId: `${prefix}-${(roomNumber++).toString(36)}`, roomName: 'flood' }),
        }),
      },
    ],
  },
  (error, result) => {
    if (error) fail(error.message);
    const statuses: Record<string, number> = {};
    for (const [status, { count = 0 }] of Object.entries(result.statusCodeStats ?? {})) statuses[status] = count;
    const report = {
      startedAt: result.start.getTime(),
      finishedAt: result.finish.getTime(),
      statuses,
      errors: result.errors,
      timeouts: result.timeouts,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
  },
);

instance.once('response', () => process.stdout.write('flood answered\n'));
process.once('SIGTERM', () => instance.stop());
process.once('SIGINT', () => instance.stop());
