/**
 * The kustomize component for clusters with prometheus-operator
 * (deploy/kubernetes/components/prometheus-operator): a ServiceMonitor that finds the base's
 * Service and its metrics port, and a PrometheusRule holding exactly the groups of the plain rules
 * file. The base stays usable without the operator's CRDs: it does not include the component.
 * An overlay that uses the component is built with `kubectl kustomize` (.ci/run brings kubectl).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../support/gateway-process.js';
import { loadAlertRules, OPERATOR_COMPONENT_DIR, readYaml } from '../support/monitoring-files.js';

const BASE_DIR = path.join(REPO_ROOT, 'deploy/kubernetes');
type Obj = Record<string, any>;

const component = (file: string): Obj => readYaml(path.join(OPERATOR_COMPONENT_DIR, file)) as Obj;
const base = (file: string): Obj => readYaml(path.join(BASE_DIR, file)) as Obj;

describe('the prometheus-operator component', () => {
  it('is a kustomize Component listing its ServiceMonitor and PrometheusRule, and only those', () => {
    const kustomization = component('kustomization.yaml');
    expect(kustomization).toMatchObject({ apiVersion: 'kustomize.config.k8s.io/v1alpha1', kind: 'Component' });
    const files = readdirSync(OPERATOR_COMPONENT_DIR).filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml');
    expect([...(kustomization['resources'] as string[])].sort()).toEqual(files.sort());
    expect(files.map((file) => component(file)['kind']).sort()).toEqual(['PrometheusRule', 'ServiceMonitor']);
  });

  it('is left out of the base, which clusters without the operator apply as it is', () => {
    const kustomization = base('kustomization.yaml');
    expect(kustomization['components']).toBeUndefined();
    expect(JSON.stringify(kustomization)).not.toContain('prometheus-operator');
    // Plain Prometheus finds the pods by these.
    expect(base('deployment.yaml')['spec'].template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true' });
  });

  it('scrapes the Service the base defines, on its named port, at the path the pods announce', () => {
    const monitor = component('servicemonitor.yaml');
    const service = base('service.yaml');
    const annotations = base('deployment.yaml')['spec'].template.metadata.annotations as Record<string, string>;
    expect(monitor).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor' });
    expect(monitor['metadata'].namespace).toBeUndefined();
    const selector = monitor['spec'].selector.matchLabels as Record<string, string>;
    expect(Object.keys(selector).length).toBeGreaterThan(0);
    expect(service['metadata'].labels).toMatchObject(selector);
    const portNames = (service['spec'].ports as Obj[]).map((port) => port['name']);
    const endpoints = monitor['spec'].endpoints as Obj[];
    expect(endpoints).toHaveLength(1);
    expect(portNames).toContain(endpoints[0]!['port']);
    expect(endpoints[0]!['path']).toBe(annotations['prometheus.io/path']);
  });

  it('scrapes often enough for the rules: every minute at least', () => {
    const interval = component('servicemonitor.yaml')['spec'].endpoints[0].interval as string;
    const [, amount, unit] = /^(\d+)(s|m)$/.exec(interval) ?? [];
    const seconds = Number(amount) * (unit === 'm' ? 60 : 1);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(60);
  });

  it('holds in its PrometheusRule the very groups of the plain rules file', () => {
    const rule = component('prometheusrule.yaml');
    expect(rule).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule' });
    expect(rule['metadata'].namespace).toBeUndefined();
    expect(rule['spec'].groups).toEqual(loadAlertRules().groups);
    expect(rule['spec'].groups.length).toBeGreaterThan(0);
  });

  it('reads the same under YAML 1.1 as under YAML 1.2', () => {
    for (const file of readdirSync(OPERATOR_COMPONENT_DIR)) {
      const text = readFileSync(path.join(OPERATOR_COMPONENT_DIR, file), 'utf8');
      expect({ file, document: parse(text, { version: '1.1' }) as unknown }).toEqual({ file, document: parse(text) as unknown });
    }
  });

  describe('built by kubectl kustomize into an overlay', () => {
    const overlay = mkdtempSync(path.join(tmpdir(), 'zim-gw-overlay-'));
    afterAll(() => rmSync(overlay, { recursive: true, force: true }));

    /** `kubectl kustomize` of a kustomization with these fields, written in a temporary overlay. */
    async function build(kustomization: Obj): Promise<Obj[]> {
      writeFileSync(path.join(overlay, 'kustomization.yaml'), JSON.stringify(kustomization));
      const { stdout } = await promisify(execFile)('kubectl', ['kustomize', overlay], { timeout: 30_000 });
      return parseAllDocuments(stdout).map((doc) => doc.toJS() as Obj);
    }
    // kustomize takes relative paths only.
    const relative = (dir: string): string => path.relative(overlay, dir);

    it('adds the ServiceMonitor and the PrometheusRule to the base, the base alone has neither', async () => {
      const withComponent = await build({ resources: [relative(BASE_DIR)], components: [relative(OPERATOR_COMPONENT_DIR)] });
      const baseOnly = await build({ resources: [relative(BASE_DIR)] });
      const kinds = (objects: Obj[]): string[] => objects.map((object) => object['kind'] as string).sort();
      expect(kinds(withComponent)).toEqual([...kinds(baseOnly), 'PrometheusRule', 'ServiceMonitor'].sort());
      expect(kinds(baseOnly)).not.toContain('ServiceMonitor');
      const rule = withComponent.find((object) => object['kind'] === 'PrometheusRule')!;
      expect(rule['spec'].groups).toEqual(loadAlertRules().groups);
    });
  });
});
