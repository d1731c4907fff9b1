/**
 * Reading a replica's GET /metrics (Prometheus text format) in the fleet tests: every sample with
 * its labels, and sums over the samples whose labels match.
 */

export interface MetricSample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

const SAMPLE = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every sample in the text (comments and blank lines skipped). */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, name, raw] of (match[2] ?? '').matchAll(LABEL)) {
      labels[name!] = raw!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The samples of `name` whose labels include every one of `labels`. */
export function metricSamples(samples: readonly MetricSample[], name: string, labels: Readonly<Record<string, string>> = {}): MetricSample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
}

/** Their sum (0 when there are none). */
export function metricSum(samples: readonly MetricSample[], name: string, labels: Readonly<Record<string, string>> = {}): number {
  return metricSamples(samples, name, labels).reduce((sum, s) => sum + s.value, 0);
}

/** One replica's metrics, from GET <url>/metrics. */
export async function scrapeMetrics(url: string): Promise<MetricSample[]> {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url}/metrics answered ${response.status}`);
  return parseMetrics(await response.text());
}
