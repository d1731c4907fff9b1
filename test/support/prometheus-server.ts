/**
 * A real Prometheus server for a test (Debian's `prometheus` package): on a free loopback port,
 * with a configuration and a TSDB of its own in a temporary directory, scraping the targets it is
 * given and evaluating the rule groups it is given, and asked through its HTTP API.
 *
 * - Every child is tracked in this module's own registry (a `ChildRegistry`, child-registry.ts):
 *   `stopAllPrometheus()` stops the ones still running (call it in afterAll) and removes their
 *   directories.
 * - Never the machine's own Prometheus (the package may have started one on :9090): the port is
 *   found by binding port 0, and a start that loses the port to another process is retried on a
 *   new one.
 * - No fixed sleeps: readiness polls GET /-/ready with a deadline.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { programOnPath } from './program-on-path.js';
import { waitFor } from './async-probes.js';
import { ChildRegistry, collectOutput, exitPromise, stopProcess } from './child-registry.js';
import { closedPort } from './ports.js';

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const BIND_ATTEMPTS = 5;
const INSTALL_HINT = 'install it (`apt-get install -y --no-install-recommends prometheus`)';

export interface PrometheusOptions {
  /** `host:port` of each target, scraped at /metrics as one job. */
  targets: readonly string[];
  /** The job's name (its `job` label). Default zim-room-gateway. */
  job?: string;
  /** Labels every target's samples get, as service discovery would add them (namespace, ...). */
  targetLabels?: Readonly<Record<string, string>>;
  /** Rule groups to load, as a rules file holds them. */
  rules?: unknown;
  /** Both the scrape and the rule evaluation interval. Default 1 s. */
  intervalSeconds?: number;
}

/** One alert as GET /api/v1/alerts lists it. */
export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

/** The body of an API answer: `status` "error" with `errorType` and `error`, or "success" with `data`. */
export interface ApiAnswer<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

export interface InstantVector {
  resultType: string;
  result: Array<{ metric: Record<string, string>; value: [number, string] }>;
}

export interface PrometheusServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** GET /api/v1/query: the answer as it is, errors included (a parse error is "bad_data"). */
  query(expr: string): Promise<ApiAnswer<InstantVector>>;
  /** The label sets of the series matching `selector` seen since `sinceMs` (epoch ms). */
  series(selector: string, sinceMs: number): Promise<Array<Record<string, string>>>;
  /** Pending and firing alerts. */
  alerts(): Promise<PrometheusAlert[]>;
  /** The targets it scrapes, with the outcome of the last scrape. */
  targets(): Promise<Array<{ scrapeUrl: string; health: 'up' | 'down' | 'unknown' }>>;
  /** What the server wrote (its log), for failure messages. */
  output(): string;
}

/** This harness's children only: stopping them never touches a gateway or a Redis. */
const children = new ChildRegistry();
const directories = new Set<string>();

/** Stops every Prometheus this module started that still runs, and removes their directories. */
export async function stopAllPrometheus(): Promise<void> {
  await Promise.all(children.running().map((child) => stopProcess(child.pid!, exitPromise(child), STOP_TIMEOUT_MS)));
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  directories.clear();
}

/** The absolute path of `program` (prometheus, promtool) on PATH; throws with an install hint when absent. */
export function findPrometheusProgram(program: 'prometheus' | 'promtool'): string {
  const found = programOnPath(program);
  if (found !== undefined) return found;
  throw new Error(`${program} is not on PATH: ${INSTALL_HINT}`);
}

class AddressInUse extends Error {}

export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const directory = mkdtempSync(path.join(tmpdir(), 'zim-gw-prometheus-'));
  directories.add(directory);
  const interval = `${options.intervalSeconds ?? 1}s`;
  const ruleFile = path.join(directory, 'rules.yaml');
  if (options.rules !== undefined) writeFileSync(ruleFile, stringify(options.rules));
  const configFile = path.join(directory, 'prometheus.yml');
  writeFileSync(
    configFile,
    stringify({
      global: { scrape_interval: interval, evaluation_interval: interval },
      ...(options.rules !== undefined && { rule_files: [ruleFile] }),
      scrape_configs: [
        {
          job_name: options.job ?? 'zim-room-gateway',
          metrics_path: '/metrics',
          static_configs: [{ targets: [...options.targets], labels: { ...options.targetLabels } }],
        },
      ],
    }),
  );
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(configFile, path.join(directory, `data-${attempt}`), options.targets.length);
    } catch (error) {
      if (!(error instanceof AddressInUse) || attempt === BIND_ATTEMPTS) throw error;
    }
  }
}

async function launch(configFile: string, dataDir: string, targetCount: number): Promise<PrometheusServer> {
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    findPrometheusProgram('prometheus'),
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: path.dirname(configFile), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.track(child);
  const output = collectOutput(child);
  const exited = exitPromise(child);
  let exit: { code: number | null } | undefined;
  void exited.then((status) => {
    exit = status;
  });
  try {
    await waitFor(
      async () => {
        if (exit) return true;
        return (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined))?.ok === true;
      },
      { what: `prometheus ready on port ${port}`, timeoutMs: START_TIMEOUT_MS, intervalMs: 50 },
    );
  } catch (error) {
    await stopProcess(child.pid!, exited, STOP_TIMEOUT_MS);
    throw new Error(`${(error as Error).message}\n--- prometheus output ---\n${output()}`, { cause: error });
  }
  if (exit) {
    const message = `prometheus exited (code ${exit.code}) before it was ready\n--- prometheus output ---\n${output()}`;
    throw /address already in use/i.test(output()) ? new AddressInUse(message) : new Error(message);
  }
  const server = prometheusClient(url, output);
  // Targets reach the scrape loops a few seconds after the start (service discovery sends its
  // updates at most every 5 s): until then there is nothing to ask about.
  await waitFor(
    async () => {
      const targets = await server.targets();
      return targets.length === targetCount && targets.every((target) => target.health === 'up');
    },
    {
      what: `prometheus on port ${port} scraping every target once`,
      timeoutMs: START_TIMEOUT_MS,
      intervalMs: 100,
    },
  );
  return server;
}

function prometheusClient(url: string, output: () => string): PrometheusServer {
  const get = async <T>(pathAndQuery: string): Promise<ApiAnswer<T>> => {
    const response = await fetch(`${url}${pathAndQuery}`, { signal: AbortSignal.timeout(5_000) });
    return (await response.json()) as ApiAnswer<T>;
  };
  const succeeded = <T>(what: string, answer: ApiAnswer<T>): T => {
    if (answer.status !== 'success') throw new Error(`${what}: ${answer.errorType}: ${answer.error}`);
    return answer.data!;
  };
  return {
    url,
    query: (expr) => get(`/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`),
    series: async (selector, sinceMs) =>
      succeeded(
        `series ${selector}`,
        await get<Array<Record<string, string>>>(`/api/v1/series?${new URLSearchParams({ 'match[]': selector, start: String(sinceMs / 1000) }).toString()}`),
      ),
    alerts: async () => succeeded('alerts', await get<{ alerts: PrometheusAlert[] }>('/api/v1/alerts')).alerts,
    targets: async () =>
      succeeded('targets', await get<{ activeTargets: Array<{ scrapeUrl: string; health: 'up' | 'down' | 'unknown' }> }>('/api/v1/targets'))
        .activeTargets,
    output,
  };
}
