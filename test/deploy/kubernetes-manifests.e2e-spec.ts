/**
 * Checks deploy/kubernetes without a cluster: every document parses, matches the Kubernetes API
 * schema of its kind (kubernetes-models) and carries no field the API server would reject as
 * unknown, and the manifests agree with the application (port, probes, configuration variables,
 * shutdown timing), with the Dockerfile (user id) and with each other (labels, names, HPA size).
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MANIFEST_DIR = join(REPO_ROOT, 'deploy', 'kubernetes');
const KUSTOMIZATION = 'kustomization.yaml';
/** A template of placeholders: applying it would overwrite the real Secret, so kustomize must not. */
const SECRET_TEMPLATE = 'secret.example.yaml';
const PLACEHOLDER = /^REPLACE_ME/;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = Record<string, any>;

interface Manifest {
  file: string;
  object: Obj;
}

interface ModelClass {
  apiVersion: string;
  kind: string;
  new (data: unknown): { validate(): void; toJSON(): unknown };
  prototype: { validate(this: unknown): void };
}

/** Every document of every YAML file, read the way YAML 1.2 tools read it. */
function loadManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of yamlFiles()) {
    const text = readFileSync(join(MANIFEST_DIR, file), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const object = doc.toJS() as unknown;
      if (object === null || object === undefined) continue;
      manifests.push({ file, object: object as Obj });
    }
  }
  return manifests;
}

function yamlFiles(): string[] {
  return readdirSync(MANIFEST_DIR)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort();
}

/** The kubernetes-models class for apiVersion/kind, or an error naming the unknown kind. */
async function modelClass(apiVersion: unknown, kind: unknown): Promise<ModelClass> {
  if (typeof apiVersion !== 'string' || !/^(?:[a-z0-9.-]+\/)?v\d+(?:(?:alpha|beta)\d+)?$/.test(apiVersion)) {
    throw new Error(`unknown apiVersion ${String(apiVersion)}`);
  }
  if (typeof kind !== 'string' || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) throw new Error(`unknown kind ${String(kind)}`);
  // Core kinds live under kubernetes-models/v1/<Kind>, the others under <group>/<version>/<Kind>.
  // The package's exports map adds ".mjs" itself, so the specifier has no extension.
  let module: Record<string, unknown>;
  try {
    module = (await import(`kubernetes-models/${apiVersion}/${kind}`)) as Record<string, unknown>;
  } catch {
    throw new Error(`unknown kind ${kind} in ${apiVersion}`);
  }
  const model = module[kind] as ModelClass | undefined;
  if (!model || model.apiVersion !== apiVersion || model.kind !== kind) {
    throw new Error(`unknown kind ${kind} in ${apiVersion}`);
  }
  return model;
}

/**
 * Paths of fields the schema does not know. The generated validators do not reject unknown
 * properties (the OpenAPI schemas do not forbid them), but the API server does (kubectl's strict
 * field validation). A validator reads every property its schema declares, and every key of a
 * map, so a key it never reads is one the schema does not have: a misspelt field, most likely.
 */
function unknownFields(model: ModelClass, value: Json): string[] {
  const read = new Set<string>();
  const track = (node: Json, path: string): Json => {
    if (node === null || typeof node !== 'object') return node;
    return new Proxy(node, {
      get(target, key, receiver) {
        const child = Reflect.get(target, key, receiver) as Json;
        if (typeof key !== 'string' || !Object.hasOwn(target, key)) return child;
        read.add(`${path}/${key}`);
        return track(child, `${path}/${key}`);
      },
    }) as Json;
  };
  try {
    model.prototype.validate.call(track(value, ''));
  } catch {
    // Schema errors are reported by validate() itself; here only the reads matter.
  }
  const unknown: string[] = [];
  const walk = (node: Json, path: string): void => {
    if (node === null || typeof node !== 'object') return;
    for (const [key, child] of Object.entries(node)) {
      const childPath = `${path}/${key}`;
      if (!read.has(childPath)) unknown.push(childPath);
      else walk(child, childPath);
    }
  };
  walk(value, '');
  return unknown;
}

async function schemaProblems(object: Obj): Promise<string[]> {
  const model = await modelClass(object['apiVersion'], object['kind']);
  const problems: string[] = [];
  try {
    new model(object).validate();
  } catch (error) {
    problems.push((error as Error).message);
  }
  // apiVersion and kind are read by the class, not by the schema.
  const fields = unknownFields(model, object as Json).filter((path) => path !== '/apiVersion' && path !== '/kind');
  problems.push(...fields.map((path) => `unknown field ${path}`));
  return problems;
}

/** Every module's settings reader (the `.settings.ts` files under src): where the gateway reads its environment. */
function settingsSources(): string[] {
  const src = join(REPO_ROOT, 'src');
  return readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.settings.ts'))
    .map((file) => readFileSync(join(src, file), 'utf8'));
}

/** The variables the gateway reads, from the EnvReader calls in the settings readers. */
function variablesTheAppReads(): Set<string> {
  const names = new Set<string>();
  for (const source of settingsSources()) {
    for (const match of source.matchAll(/read\.(?:int|optional|required|oneOf|bool)\(\s*'([A-Z0-9_]+)'/g)) {
      names.add(match[1]!);
    }
    // Readers of a shape of their own take the reader and the name: readShare(read, 'NAME', ...).
    for (const match of source.matchAll(/\bread[A-Z]\w*\(\s*read\s*,\s*'([A-Z0-9_]+)'/g)) {
      names.add(match[1]!);
    }
    for (const match of source.matchAll(/read\.inlineOrFile\(\s*'([A-Z0-9_]+)'\s*,\s*'([A-Z0-9_]+)'/g)) {
      names.add(match[1]!);
      names.add(match[2]!);
    }
  }
  return names;
}

/** The app's default for an integer variable, from `read.int('NAME', { default: n, ... })`. */
function appIntDefault(name: string): number {
  const pattern = new RegExp(`read\\.int\\(\\s*'${name}'\\s*,\\s*\\{\\s*default:\\s*([\\d_]+)`);
  const match = settingsSources()
    .map((source) => pattern.exec(source))
    .find((found) => found !== null);
  if (!match) throw new Error(`no default for ${name} in the settings readers under src`);
  return Number(match[1]!.replaceAll('_', ''));
}

/** The numeric uid the image runs as, from the Dockerfile's last USER. */
function dockerfileUid(): number {
  const users = [...readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').matchAll(/^\s*USER\s+(\S+)/gim)];
  const user = users.at(-1)?.[1]?.split(':')[0];
  if (user === undefined) throw new Error('the Dockerfile has no USER');
  // The official node images create `node` as uid 1000.
  if (user === 'node') return 1000;
  if (/^\d+$/.test(user)) return Number(user);
  throw new Error(`cannot tell the uid of Dockerfile USER ${user}`);
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

let manifests: Manifest[];
const byKind = (kind: string): Obj[] => manifests.filter((m) => m.object['kind'] === kind).map((m) => m.object);
const one = (kind: string): Obj => {
  const found = byKind(kind);
  expect(found).toHaveLength(1);
  return found[0]!;
};

beforeAll(() => {
  manifests = loadManifests();
});

describe('deploy/kubernetes against the Kubernetes API schemas', () => {
  it('has one resource per file, of the expected kinds', () => {
    const kinds = manifests.map((m) => `${m.file}: ${m.object['kind']}`);
    expect(kinds).toEqual([
      'configmap.yaml: ConfigMap',
      'deployment.yaml: Deployment',
      'hpa.yaml: HorizontalPodAutoscaler',
      'kustomization.yaml: Kustomization',
      'networkpolicy.yaml: NetworkPolicy',
      'pdb.yaml: PodDisruptionBudget',
      'secret.example.yaml: Secret',
      'service.yaml: Service',
      'serviceaccount.yaml: ServiceAccount',
    ]);
  });

  it('validates every resource against its schema, with no unknown field', async () => {
    const resources = manifests.filter((m) => m.object['kind'] !== 'Kustomization');
    expect(resources.length).toBeGreaterThanOrEqual(8);
    const problems: string[] = [];
    for (const { file, object } of resources) {
      try {
        problems.push(...(await schemaProblems(object)).map((p) => `${file}: ${p}`));
      } catch (error) {
        problems.push(`${file}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('catches a schema violation, a misspelt field and an unknown kind (the checks above can fail)', async () => {
    const deployment = structuredClone(one('Deployment'));
    deployment['spec'].replicas = '3';
    expect((await schemaProblems(deployment)).join()).toMatch(/spec\/replicas must be integer/);

    const typo = structuredClone(one('Deployment'));
    typo['spec'].template.spec.containers[0].readinesProbe = typo['spec'].template.spec.containers[0].readinessProbe;
    expect(await schemaProblems(typo)).toEqual(['unknown field /spec/template/spec/containers/0/readinesProbe']);

    await expect(schemaProblems({ apiVersion: 'example.com/v1', kind: 'Widget' })).rejects.toThrow(/unknown kind/);
    await expect(schemaProblems({ apiVersion: 'apps/v1', kind: 'Service' })).rejects.toThrow(/unknown kind/);
  });

  it('reads the same under YAML 1.1 (kubectl) as under YAML 1.2 (no 0440-style ambiguity)', () => {
    for (const file of yamlFiles()) {
      const text = readFileSync(join(MANIFEST_DIR, file), 'utf8');
      const as12 = parseAllDocuments(text).map((d) => d.toJS() as unknown);
      const as11 = parseAllDocuments(text, { version: '1.1' }).map((d) => d.toJS() as unknown);
      expect({ file, docs: as11 }).toEqual({ file, docs: as12 });
    }
  });

  it('is namespace-agnostic: no resource names a namespace', () => {
    const namespaced = manifests.filter((m) => m.object['metadata']?.namespace !== undefined).map((m) => m.file);
    expect(namespaced).toEqual([]);
    expect(one('Kustomization')['namespace']).toBeUndefined();
  });

  it('has a kustomization listing every manifest but the Secret template', () => {
    const kustomization = one('Kustomization');
    expect(kustomization['apiVersion']).toBe('kustomize.config.k8s.io/v1beta1');
    const listed = [...(kustomization['resources'] as string[])].sort();
    const expected = yamlFiles().filter((f) => f !== KUSTOMIZATION && f !== SECRET_TEMPLATE);
    expect(listed).toEqual(expected);
    expect(listed).not.toContain(SECRET_TEMPLATE);
  });
});

describe('the Deployment', () => {
  let deployment: Obj;
  let pod: Obj;
  let container: Obj;
  let config: Record<string, string>;

  beforeAll(() => {
    deployment = one('Deployment');
    pod = deployment['spec'].template.spec;
    expect(pod.containers).toHaveLength(1);
    container = pod.containers[0];
    config = one('ConfigMap')['data'];
  });

  it('runs 3 replicas of the placeholder image, with pod labels its selector matches', () => {
    expect(deployment['spec'].replicas).toBe(3);
    expect(container['image']).toBe('registry.example.internal/platform/zim-room-gateway:0.1.0');
    const labels = deployment['spec'].template.metadata.labels;
    expect(labels['app.kubernetes.io/name']).toBe('zim-room-gateway');
    expect(matches(deployment['spec'].selector.matchLabels, labels)).toBe(true);
  });

  it('serves on the containerPort "http" whose number is the app default PORT', () => {
    const appPort = appIntDefault('PORT');
    expect(appPort).toBe(3000);
    const http = (container['ports'] as Obj[]).filter((p) => p['name'] === 'http');
    expect(http).toEqual([{ name: 'http', containerPort: appPort, protocol: 'TCP' }]);
    if (config['PORT'] !== undefined) expect(Number(config['PORT'])).toBe(appPort);
    const annotations = deployment['spec'].template.metadata.annotations;
    expect(annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(appPort),
      'prometheus.io/path': '/metrics',
    });
  });

  it('probes /health/live and /health/ready on a declared container port', () => {
    const portNames = (container['ports'] as Obj[]).map((p) => p['name']);
    const { livenessProbe, readinessProbe, startupProbe } = container;
    for (const probe of [livenessProbe, readinessProbe, startupProbe]) {
      expect(portNames).toContain(probe.httpGet.port);
      expect(probe.httpGet.port).toBe('http');
    }
    expect(livenessProbe).toEqual({
      httpGet: { path: '/health/live', port: 'http' },
      periodSeconds: 10,
      failureThreshold: 3,
      timeoutSeconds: 2,
    });
    expect(readinessProbe).toEqual({
      httpGet: { path: '/health/ready', port: 'http' },
      periodSeconds: 5,
      failureThreshold: 2,
      timeoutSeconds: 2,
    });
    expect(startupProbe.httpGet.path).toBe('/health/live');
  });

  it('runs locked down, as the Dockerfile user', () => {
    const uid = dockerfileUid();
    expect(pod['automountServiceAccountToken']).toBe(false);
    expect(pod['serviceAccountName']).toBe(one('ServiceAccount')['metadata'].name);
    const locked = {
      runAsNonRoot: true,
      runAsUser: uid,
      runAsGroup: uid,
      seccompProfile: { type: 'RuntimeDefault' },
    };
    expect(pod['securityContext']).toMatchObject(locked);
    expect(container['securityContext']).toMatchObject({
      ...locked,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(container['securityContext'].capabilities.add).toBeUndefined();
    expect(container['securityContext'].privileged).not.toBe(true);
  });

  it('gives the read-only root filesystem an emptyDir at /tmp', () => {
    const mount = (container['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === '/tmp');
    expect(mount).toBeDefined();
    const volume = (pod['volumes'] as Obj[]).find((v) => v['name'] === mount!['name']);
    expect(volume?.['emptyDir']).toBeDefined();
  });

  it('requests and limits resources', () => {
    expect(container['resources']).toEqual({
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { cpu: '1', memory: '256Mi' },
    });
  });

  it('reads secrets from the mounted Secret, read-only, 0440 or 0400, and REDIS_URL from a secretKeyRef', () => {
    const secret = one('Secret');
    const env = Object.fromEntries((container['env'] as Obj[]).map((e) => [e['name'], e]));
    const dir = '/var/run/secrets/zim-room-gateway';
    expect(env['ZEGO_SERVER_SECRET_FILE']).toEqual({ name: 'ZEGO_SERVER_SECRET_FILE', value: `${dir}/zego-server-secret` });
    expect(env['API_KEYS_FILE']).toEqual({ name: 'API_KEYS_FILE', value: `${dir}/api-keys` });
    expect(env['REDIS_URL']).toEqual({
      name: 'REDIS_URL',
      valueFrom: { secretKeyRef: { name: secret['metadata'].name, key: 'redis-url' } },
    });

    const mount = (container['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === dir);
    expect(mount?.['readOnly']).toBe(true);
    const volume = (pod['volumes'] as Obj[]).find((v) => v['name'] === mount!['name']);
    expect(volume?.['secret']?.secretName).toBe(secret['metadata'].name);
    expect([0o440, 0o400]).toContain(volume!['secret'].defaultMode);
    // Each file the env points at is a key of the Secret, projected under the same name.
    const items = (volume!['secret'].items ?? []) as Obj[];
    for (const variable of ['ZEGO_SERVER_SECRET_FILE', 'API_KEYS_FILE']) {
      const fileName = (env[variable]!['value'] as string).slice(dir.length + 1);
      expect(items).toContainEqual({ key: fileName, path: fileName });
      expect(Object.keys(secret['stringData'] ?? secret['data'])).toContain(fileName);
    }
    // With 0440 the process reads the files through its group: fsGroup must be its gid.
    if (volume!['secret'].defaultMode === 0o440) expect(pod['securityContext'].fsGroup).toBe(pod['securityContext'].runAsGroup);
    // Nothing secret comes in through the ConfigMap.
    expect(container['envFrom']).toEqual([{ configMapRef: { name: one('ConfigMap')['metadata'].name } }]);
  });

  it('stops gracefully: preStop sleep, then SHUTDOWN_GRACE_MS, then the longest request, within the grace period', () => {
    const preStopSeconds = container['lifecycle'].preStop.sleep.seconds as number;
    expect(preStopSeconds).toBe(5);
    expect(container['lifecycle'].preStop.exec).toBeUndefined();
    const shutdownGraceMs = Number(config['SHUTDOWN_GRACE_MS']);
    const callDeadlineMs = Number(config['ZEGO_CALL_DEADLINE_MS']);
    expect(shutdownGraceMs).toBe(5000);
    expect(callDeadlineMs).toBe(appIntDefault('ZEGO_CALL_DEADLINE_MS'));
    const needed = preStopSeconds + shutdownGraceMs / 1000 + callDeadlineMs / 1000;
    expect(pod['terminationGracePeriodSeconds']).toBe(30);
    expect(pod['terminationGracePeriodSeconds']).toBeGreaterThan(needed);
  });

  it('spreads its pods across nodes', () => {
    const labels = deployment['spec'].template.metadata.labels;
    expect(pod['topologySpreadConstraints']).toContainEqual({
      maxSkew: 1,
      topologyKey: 'kubernetes.io/hostname',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: { 'app.kubernetes.io/name': labels['app.kubernetes.io/name'] } },
    });
  });
});

describe('the ConfigMap and the Secret template', () => {
  it('sets only variables the app reads, none of them secret, with LOG_LEVEL info', () => {
    const appReads = variablesTheAppReads();
    expect(appReads).toContain('PORT');
    expect(appReads).toContain('ZEGO_SERVER_SECRET_FILE');
    const data = one('ConfigMap')['data'] as Record<string, unknown>;
    const keys = Object.keys(data);
    expect(keys.length).toBeGreaterThan(10);
    expect(keys.filter((key) => !appReads.has(key))).toEqual([]);
    expect(keys.filter((key) => /SECRET|PASSWORD|^API_KEYS|^REDIS_URL$/.test(key))).toEqual([]);
    expect(Object.entries(data).filter(([, value]) => typeof value !== 'string')).toEqual([]);
    expect(data['LOG_LEVEL']).toBe('info');
    // Variables the Deployment sets itself must be read by the app too.
    const env = (one('Deployment')['spec'].template.spec.containers[0].env as Obj[]).map((e) => e['name'] as string);
    expect(env.filter((name) => !appReads.has(name))).toEqual([]);
  });

  it('says in the ConfigMap how to reach Redis through Sentinel or a Cluster instead', () => {
    const text = readFileSync(join(REPO_ROOT, 'deploy/kubernetes/configmap.yaml'), 'utf8');
    for (const name of ['REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER', 'REDIS_CLUSTER_NODES']) expect(text).toContain(name);
  });

  it('covers every non-secret variable of .env.example', () => {
    const example = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
    const documented = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    expect(documented).toContain('ZEGO_APP_ID');
    // Secrets come from the Secret; the Sentinel and Cluster variables replace REDIS_URL, which the
    // Deployment sets (the ConfigMap says how to switch).
    const elsewhere = /SECRET|PASSWORD|^API_KEYS|^REDIS_URL$|^REDIS_SENTINEL|^REDIS_CLUSTER_NODES$|^REDIS_USERNAME$|^REDIS_TLS$/;
    const data = one('ConfigMap')['data'] as Record<string, string>;
    expect(documented.filter((name) => !elsewhere.test(name) && !(name in data))).toEqual([]);
  });

  it('documents every variable the app reads in the README table and in .env.example', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## The endpoint'));
    const inTable = new Set([...table.matchAll(/^\|[^|]*/gm)].flatMap((row) => [...row[0].matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!)));
    const example = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
    const inExample = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!));
    // NODE_ENV is the platform's, not ours: it only makes RATE_LIMIT_STANDALONE necessary.
    const ours = [...variablesTheAppReads()].filter((name) => name !== 'NODE_ENV');
    expect(ours.length).toBeGreaterThan(20);
    expect(ours.filter((name) => !inTable.has(name))).toEqual([]);
    expect(ours.filter((name) => !inExample.has(name))).toEqual([]);
  });

  it('assumes as many replicas in local mode as the HPA may run', () => {
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa['spec'].maxReplicas).toBe(6);
    expect(Number(one('ConfigMap')['data']['RATE_LIMIT_REPLICAS'])).toBe(hpa['spec'].maxReplicas);
  });

  it('holds only placeholders in the Secret template', () => {
    const secret = one('Secret');
    const values: Array<[string, string]> = [
      ...Object.entries((secret['stringData'] ?? {}) as Record<string, string>),
      ...Object.entries((secret['data'] ?? {}) as Record<string, string>).map(
        ([key, value]): [string, string] => [key, Buffer.from(value, 'base64').toString('utf8')],
      ),
    ];
    expect(values.map(([key]) => key).sort()).toEqual(['api-keys', 'redis-url', 'zego-server-secret']);
    expect(values.filter(([, value]) => !PLACEHOLDER.test(String(value)))).toEqual([]);
  });
});

describe('the other resources', () => {
  let podLabels: Record<string, string>;
  beforeAll(() => {
    podLabels = one('Deployment')['spec'].template.metadata.labels;
  });

  it('exposes port 80 as a ClusterIP Service to the named container port', () => {
    const service = one('Service');
    expect(service['spec'].type).toBe('ClusterIP');
    expect(service['spec'].ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    expect(matches(service['spec'].selector, podLabels)).toBe(true);
  });

  it('autoscales the Deployment from 3 to 6 replicas on 70% CPU', () => {
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa['apiVersion']).toBe('autoscaling/v2');
    expect(hpa['spec'].scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: one('Deployment')['metadata'].name,
    });
    expect([hpa['spec'].minReplicas, hpa['spec'].maxReplicas]).toEqual([3, 6]);
    expect(hpa['spec'].metrics).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
    ]);
  });

  it('keeps 2 pods through voluntary disruptions', () => {
    const pdb = one('PodDisruptionBudget');
    expect(pdb['apiVersion']).toBe('policy/v1');
    expect(pdb['spec'].minAvailable).toBe(2);
    expect(pdb['spec'].minAvailable).toBeLessThan(one('Deployment')['spec'].replicas);
    expect(matches(pdb['spec'].selector.matchLabels, podLabels)).toBe(true);
  });

  it('lets traffic in only from the namespace, client namespaces and monitoring, on port http', () => {
    const policy = one('NetworkPolicy');
    expect(matches(policy['spec'].podSelector.matchLabels, podLabels)).toBe(true);
    expect(policy['spec'].policyTypes).toEqual(['Ingress', 'Egress']);
    const ingress = policy['spec'].ingress as Obj[];
    for (const rule of ingress) expect(rule['ports']).toEqual([{ protocol: 'TCP', port: 'http' }]);
    const peers = ingress.flatMap((rule) => rule['from'] as Obj[]);
    expect(peers).toEqual([
      { podSelector: {} },
      { namespaceSelector: { matchLabels: { 'zim-room-gateway-client': 'true' } } },
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ]);
  });

  it('lets traffic out only to Redis, DNS and public HTTPS', () => {
    const egress = one('NetworkPolicy')['spec'].egress as Obj[];
    const ports = (rule: Obj): string[] => (rule['ports'] as Obj[]).map((p) => `${p['protocol']}/${p['port']}`).sort();
    expect(egress).toHaveLength(3);
    const [redis, dns, https] = egress as [Obj, Obj, Obj];
    expect(redis['to']).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } } }]);
    expect(ports(redis)).toEqual(['TCP/26379', 'TCP/6379']);
    expect(dns['to']).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
        podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
      },
    ]);
    expect(ports(dns)).toEqual(['TCP/53', 'UDP/53']);
    expect(ports(https)).toEqual(['TCP/443']);
    const v4 = (https['to'] as Obj[]).find((peer) => peer['ipBlock']?.cidr === '0.0.0.0/0');
    expect(v4?.['ipBlock'].except).toEqual(expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']));
    expect((https['to'] as Obj[]).every((peer) => Object.keys(peer).join() === 'ipBlock')).toBe(true);
  });

  it('has a ServiceAccount that mounts no token', () => {
    expect(one('ServiceAccount')['automountServiceAccountToken']).toBe(false);
  });
});
