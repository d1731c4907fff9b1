/**
 * Gives test suites a real Redis Cluster: private `redis-server --cluster-enabled yes` children on
 * free loopback ports, joined by `redis-cli --cluster create`.
 *
 * - `startRedisCluster({ primaries, replicasPerPrimary, password, nodeTimeoutMs })` starts
 *   `primaries * (1 + replicasPerPrimary)` nodes, each in its own temporary directory with its own
 *   nodes-<port>.conf, forms the cluster and resolves once it is ok (see `waitUntilOk`). Node
 *   processes are started the way redis-server.ts starts its servers (no persistence, a port from
 *   binding port 0, a retry on new ports when the bind fails, readiness by a raw PING that must come
 *   from our child), but are tracked in this module's own `ChildRegistry`: `stopAllRedis()` leaves
 *   them alone and `stopAllRedisClusters()` (call it in afterAll) stops them.
 * - Each node gets an explicit cluster bus port (`--cluster-port`): the default, port + 10000,
 *   does not exist for a port above 55535, which binding port 0 readily hands out.
 * - The cluster node timeout is short (1000 ms unless told otherwise) so that a failure is detected
 *   and a replica promoted within seconds. Replicas sync without the diskless-sync delay (5 s by
 *   default), and a replica counts as ready only once its link to its primary is up (one that never
 *   synced refuses to fail over: its data would be too old) and every node lists it in CLUSTER
 *   SLOTS (Redis leaves out a replica whose replication offset is still 0, so a client connecting
 *   then would never send it a read; primaries ping their replicas every second to move it on).
 * - The handle's `nodes` keep their node id across restarts (each node keeps its nodes.conf, so a
 *   restarted node rejoins as itself); their `role` is the one last read from the cluster, at start
 *   and by `waitUntilOk` and `waitForFailover`.
 * - `keySlot(key)` computes a key's hash slot as Redis does (CRC16/XMODEM of the key, or of its
 *   first non-empty `{hash tag}`, modulo 16384), and `primaryFor(key)` asks the cluster which
 *   primary serves that slot now.
 * - No fixed sleeps: every wait polls with a deadline and its failure names what was last seen.
 * - `redis-server` and `redis-cli` (with `--cluster`, Redis 5 or newer) must be on PATH
 *   (`apt-get install -y redis-server` brings both).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChildRegistry, collectOutput, exitPromise } from './child-registry.js';
import { closedPort } from './ports.js';
import {
  BindError,
  findRedisProgram,
  hasExited,
  launchRedisServer,
  rawCommand,
  type RawReply,
  serverArgs,
  stopChild,
  waitUntilRefused,
} from './redis-server.js';

// ------------------------------------------------------------------ types

export type ClusterRole = 'primary' | 'replica';

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  /** The cluster bus port (node-to-node gossip). */
  readonly busPort: number;
  /** The node id, kept across restarts. */
  readonly id: string;
  /** As last read from the cluster: at start, and by `waitUntilOk` / `waitForFailover`. */
  readonly role: ClusterRole;
  /** For a replica, the id of the primary it follows (as last read); undefined for a primary. */
  readonly primaryId: string | undefined;
  /** Its process has not exited (a paused one counts as running). */
  isRunning(): boolean;
}

export interface RedisClusterOptions {
  /** At least 3 (`redis-cli --cluster create` refuses fewer). Default 3. */
  primaries?: number;
  /** Default 0. */
  replicasPerPrimary?: number;
  /** Every node's `requirepass` (and `masterauth`, for replicas). */
  password?: string;
  /** `cluster-node-timeout`: how long a silent node takes to be considered failing. Default 1000. */
  nodeTimeoutMs?: number;
}

export interface TestRedisCluster {
  /** Every node, in the order they were started. */
  readonly nodes: readonly ClusterNode[];
  /** `127.0.0.1:<port>,…` of every node: what the gateway gets as REDIS_CLUSTER_NODES. */
  readonly seeds: string;
  /** The same nodes as ioredis `Cluster` startup nodes. */
  readonly startupNodes: ReadonlyArray<{ host: string; port: number }>;
  readonly password: string | undefined;
  /** The nodes whose last read role is primary. */
  primaries(): ClusterNode[];
  /** The nodes last read as replicas of `primary`. */
  replicasOf(primary: ClusterNode): ClusterNode[];
  /** Asks a running node which primary serves the slot of `key` now (it may be a dead one). */
  primaryFor(key: string | Buffer): Promise<ClusterNode>;
  /** SIGTERM (SIGKILL after a deadline); resolves once the process exited and its port refuses connections. */
  stop(node: ClusterNode): Promise<void>;
  /** SIGKILL: a node that dies without a word; resolves once the port refuses connections. */
  kill(node: ClusterNode): Promise<void>;
  /** Starts the node again on its ports with its nodes.conf (it rejoins as itself, empty data); stops it first if running. */
  restart(node: ClusterNode): Promise<void>;
  /** SIGSTOP / SIGCONT: a node that hangs (connections stay open, nothing answers, no gossip either). */
  pause(node: ClusterNode): void;
  resume(node: ClusterNode): void;
  /**
   * Resolves once every running node says cluster_state:ok with all 16384 slots ok, knows every
   * node, sees no running node as failing, all agree on who serves which slots, every running
   * replica's link to its primary is up and every node lists every running replica in CLUSTER
   * SLOTS. Refreshes the nodes' roles.
   */
  waitUntilOk(timeoutMs?: number): Promise<void>;
  /** Resolves with the replica of `oldPrimary` that was promoted, once the cluster is ok again. */
  waitForFailover(oldPrimary: ClusterNode, timeoutMs?: number): Promise<ClusterNode>;
  /** Stops every node of this cluster and removes its files. Safe to call repeatedly. */
  stopAll(): Promise<void>;
}

// ------------------------------------------------------------------ constants

const HOST = '127.0.0.1';
const SLOT_COUNT = 16384;
const DEFAULT_NODE_TIMEOUT_MS = 1000;
const CREATE_TIMEOUT_MS = 30_000;
const OK_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 500;
const BIND_ATTEMPTS = 5;

// ------------------------------------------------------------------ registry of live clusters

/** This harness's children only (nodes and redis-cli): stopAllRedis() never touches them. */
const children = new ChildRegistry();
const liveClusters = new Set<RedisCluster>();

/** PIDs of every cluster node (and redis-cli) still running, for diagnostics. */
export function runningRedisClusterPids(): number[] {
  return children.pids();
}

/** Stops every cluster still running and removes its files (call in afterAll). Safe to call repeatedly. */
export async function stopAllRedisClusters(): Promise<void> {
  await Promise.all([...liveClusters].map((cluster) => cluster.stopAll()));
  await Promise.all(children.running().map((child) => stopChild(child)));
}

// ------------------------------------------------------------------ hash slots

/** CRC16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster hashes keys with. */
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[byte] = crc & 0xffff;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

/**
 * The hash slot of `key`, as Redis computes it: when the key has a `{` followed later by a `}`
 * with at least one byte between them, only those bytes (of the first such pair) are hashed, so
 * keys sharing a hash tag share a slot.
 */
export function keySlot(key: string | Buffer): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const open = bytes.indexOf(0x7b); // '{'
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOT_COUNT;
  }
  return crc16(bytes) % SLOT_COUNT;
}

// ------------------------------------------------------------------ reading the cluster's state

/** One line of CLUSTER NODES. */
interface NodeEntry {
  id: string;
  port: number;
  flags: Set<string>;
  primaryId: string | undefined;
  slotRanges: Array<[number, number]>;
}

/** Parses CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <primary|-> … <link-state> <slot ranges…>`. */
function parseClusterNodes(text: string): NodeEntry[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = line.trim().split(' ');
      const slotRanges: Array<[number, number]> = [];
      // Slots being migrated (`[slot->-id]`, `[slot-<-id]`) are skipped: they still belong to this node.
      for (const range of fields.slice(8).filter((field) => !field.startsWith('['))) {
        const [start, end = start] = range.split('-').map(Number);
        slotRanges.push([start, end]);
      }
      return {
        id: fields[0],
        port: Number(/:(\d+)@/.exec(fields[1])?.[1]),
        flags: new Set(fields[2].split(',')),
        primaryId: fields[3] === '-' ? undefined : fields[3],
        slotRanges,
      };
    });
}

/** `key:value` lines of CLUSTER INFO or INFO. */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** The ports CLUSTER SLOTS lists (`[[start, end, [ip, port, id, …], replicas…], …]`): the nodes a client learns of. */
function portsInClusterSlots(reply: RawReply): Set<number> {
  const ports = new Set<number>();
  for (const range of reply.elements ?? []) {
    for (const node of range.elements?.slice(2) ?? []) ports.add(Number(node.elements?.[1]?.value));
  }
  return ports;
}

/** Who serves which slots and who follows whom, in one comparable string. */
function topologySignature(entries: NodeEntry[]): string {
  return entries
    .map((entry) => {
      const role = entry.flags.has('master') ? 'primary' : `replica of ${entry.primaryId}`;
      return `${entry.id} ${role} ${entry.slotRanges.map(([start, end]) => `${start}-${end}`).join(',')}`;
    })
    .sort()
    .join('\n');
}

/** CLUSTER NODES flags of a node that is not a healthy member (`fail?` is a suspected failure). */
const FAILING_FLAGS = ['fail', 'fail?', 'handshake', 'noaddr'];

// ------------------------------------------------------------------ node processes

class ClusterNodeProcess implements ClusterNode {
  readonly host = HOST;
  id = '';
  role: ClusterRole = 'primary';
  primaryId: string | undefined;

  constructor(
    readonly port: number,
    readonly busPort: number,
    readonly args: string[],
    public child: ChildProcess,
  ) {}

  isRunning(): boolean {
    return !hasExited(this.child);
  }

  toString(): string {
    return `${this.host}:${this.port}`;
  }
}

function nodeArgs(port: number, busPort: number, dir: string, nodeTimeoutMs: number, password?: string): string[] {
  return [
    ...serverArgs(port),
    '--dir', dir,
    '--cluster-enabled', 'yes',
    '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
    '--cluster-node-timeout', String(nodeTimeoutMs),
    '--cluster-port', String(busPort),
    // A replica syncs at once instead of waiting 5 s for other replicas to join the same transfer.
    '--repl-diskless-sync-delay', '0',
    // CLUSTER SLOTS leaves out a replica whose replication offset is still 0, which it is until its
    // primary takes a write or pings it (every 10 s by default): a client would not know it.
    '--repl-ping-replica-period', '1',
    ...(password === undefined ? [] : ['--requirepass', password, '--masterauth', password]),
  ];
}

/** A port from binding port 0 that no other node of this cluster uses. */
async function unusedPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await closedPort();
    if (taken.has(port)) continue;
    taken.add(port);
    return port;
  }
}

/** Starts one node in its own directory under `clusterDir`, on new ports when the bind fails. */
async function launchNode(
  clusterDir: string,
  taken: Set<number>,
  nodeTimeoutMs: number,
  password: string | undefined,
): Promise<ClusterNodeProcess> {
  let lastBindError: BindError | undefined;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const port = await unusedPort(taken);
    const busPort = await unusedPort(taken);
    const dir = path.join(clusterDir, `node-${port}`);
    mkdirSync(dir);
    const args = nodeArgs(port, busPort, dir, nodeTimeoutMs, password);
    try {
      return new ClusterNodeProcess(port, busPort, args, await launchRedisServer(port, args, { registry: children, password }));
    } catch (error) {
      if (!(error instanceof BindError)) throw error;
      lastBindError = error;
    }
  }
  throw new Error(`a cluster node failed to bind ${BIND_ATTEMPTS} times: ${lastBindError?.message}`);
}

/** Runs `redis-cli --cluster create` over the nodes; it assigns the slots and picks the replicas. */
async function createCluster(nodes: ClusterNodeProcess[], replicasPerPrimary: number, password?: string): Promise<void> {
  const args = [
    '--cluster', 'create',
    ...nodes.map((node) => `${node.host}:${node.port}`),
    '--cluster-replicas', String(replicasPerPrimary),
    '--cluster-yes',
  ];
  // REDISCLI_AUTH rather than -a: redis-cli warns about a password on its command line.
  const env = password === undefined ? process.env : { ...process.env, REDISCLI_AUTH: password };
  const child = spawn(findRedisProgram('redis-cli'), args, { cwd: tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.track(child);
  const output = collectOutput(child);
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), CREATE_TIMEOUT_MS);
  });
  const outcome = await Promise.race([exitPromise(child), spawnFailed, timedOut]);
  clearTimeout(timer);
  const describe = (): string => `\n--- redis-cli output ---\n${output() === '' ? '(none)' : output()}`;
  if (outcome instanceof Error) throw new Error(`redis-cli could not be started: ${outcome.message}`);
  if (outcome === 'timeout') {
    await stopChild(child);
    throw new Error(`redis-cli --cluster create did not finish within ${CREATE_TIMEOUT_MS} ms${describe()}`);
  }
  if (outcome.code !== 0) {
    const hint = /unrecognized option|bad number of args/i.test(output())
      ? ' (this redis-cli has no --cluster support: it needs Redis 5 or newer)'
      : '';
    throw new Error(`redis-cli --cluster create failed (code ${outcome.code}, signal ${outcome.signal})${hint}${describe()}`);
  }
}

// ------------------------------------------------------------------ the cluster handle

type ClusterState = { ok: true; entries: NodeEntry[] } | { ok: false; reason: string };

class RedisCluster implements TestRedisCluster {
  readonly seeds: string;
  readonly startupNodes: ReadonlyArray<{ host: string; port: number }>;
  private stopped = false;
  /** The entries of the last ok state read, which `pollState` applied to the nodes. */
  private currentEntries: NodeEntry[] = [];

  constructor(
    readonly nodes: readonly ClusterNodeProcess[],
    readonly password: string | undefined,
    private readonly dir: string,
  ) {
    this.startupNodes = nodes.map(({ host, port }) => ({ host, port }));
    this.seeds = nodes.map((node) => `${node.host}:${node.port}`).join(',');
  }

  primaries(): ClusterNode[] {
    return this.nodes.filter((node) => node.role === 'primary');
  }

  replicasOf(primary: ClusterNode): ClusterNode[] {
    return this.nodes.filter((node) => node.role === 'replica' && node.primaryId === primary.id);
  }

  async primaryFor(key: string | Buffer): Promise<ClusterNode> {
    const slot = keySlot(key);
    const problems: string[] = [];
    for (const node of this.nodes.filter((candidate) => candidate.isRunning())) {
      let entries: NodeEntry[];
      try {
        entries = parseClusterNodes(await this.command(node, ['CLUSTER', 'NODES']));
      } catch (error) {
        problems.push(`${node}: ${(error as Error).message}`);
        continue;
      }
      const owner = entries.find(
        (entry) => entry.flags.has('master') && entry.slotRanges.some(([start, end]) => start <= slot && slot <= end),
      );
      const serving = owner && this.nodes.find((candidate) => candidate.port === owner.port);
      if (serving) return serving;
      problems.push(`${node}: no primary listed for slot ${slot}`);
    }
    throw new Error(`no running node names the primary of slot ${slot}: ${problems.join('; ') || 'no node is running'}`);
  }

  async stop(node: ClusterNode): Promise<void> {
    const owned = this.own(node);
    await stopChild(owned.child);
    await waitUntilRefused(owned.port);
  }

  async kill(node: ClusterNode): Promise<void> {
    const owned = this.own(node);
    owned.child.kill('SIGKILL');
    await exitPromise(owned.child);
    await waitUntilRefused(owned.port);
  }

  async restart(node: ClusterNode): Promise<void> {
    const owned = this.own(node);
    if (this.stopped) throw new Error(`cannot restart ${owned}: its cluster was stopped (its files are gone)`);
    if (owned.isRunning()) await this.stop(owned);
    try {
      owned.child = await launchRedisServer(owned.port, owned.args, { registry: children, password: this.password });
    } catch (error) {
      const hint = error instanceof BindError ? ' (something else took the port meanwhile)' : '';
      throw new Error(`restart of cluster node ${owned} failed${hint}: ${(error as Error).message}`, { cause: error });
    }
  }

  pause(node: ClusterNode): void {
    const owned = this.own(node);
    if (!owned.isRunning()) throw new Error(`cluster node ${owned} is not running: cannot pause it`);
    owned.child.kill('SIGSTOP');
  }

  resume(node: ClusterNode): void {
    const owned = this.own(node);
    if (!owned.isRunning()) throw new Error(`cluster node ${owned} is not running: cannot resume it`);
    owned.child.kill('SIGCONT');
  }

  async waitUntilOk(timeoutMs = OK_TIMEOUT_MS): Promise<void> {
    await this.pollState('the cluster to be ok', timeoutMs, () => true);
  }

  async waitForFailover(oldPrimary: ClusterNode, timeoutMs = OK_TIMEOUT_MS): Promise<ClusterNode> {
    const old = this.own(oldPrimary);
    const candidates = this.replicasOf(old);
    if (candidates.length === 0) throw new Error(`${old} has no replica that could be promoted`);
    const promotedIn = (entries: NodeEntry[]): ClusterNodeProcess | undefined =>
      this.nodes.find(
        (node) =>
          candidates.includes(node) && entries.some((entry) => entry.id === node.id && entry.flags.has('master')),
      );
    await this.pollState(`a replica of ${old} to be promoted`, timeoutMs, (entries) => promotedIn(entries) !== undefined);
    return promotedIn(this.currentEntries)!;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => stopChild(node.child)));
    this.stopped = true;
    liveClusters.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  // -------------------------------------------------------------- internals

  private own(node: ClusterNode): ClusterNodeProcess {
    const owned = this.nodes.find((candidate) => candidate === node);
    if (!owned) throw new Error(`${node.host}:${node.port} is not a node of this cluster`);
    return owned;
  }

  /** One command to one node over a fresh connection; an error reply throws. */
  private async reply(node: ClusterNode, args: string[]): Promise<RawReply> {
    const reply = await rawCommand(node.port, args, { password: this.password, timeoutMs: PROBE_TIMEOUT_MS });
    if (reply.type === '-') throw new Error(`${args.join(' ')}: ${reply.value}`);
    return reply;
  }

  private async command(node: ClusterNode, args: string[]): Promise<string> {
    return (await this.reply(node, args)).value ?? '';
  }

  /** Polls until the cluster is ok and `also` holds for its topology; then applies the topology to the nodes. */
  private async pollState(what: string, timeoutMs: number, also: (entries: NodeEntry[]) => boolean): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const state = await this.readState();
      if (state.ok && also(state.entries)) {
        this.applyTopology(state.entries);
        return;
      }
      const lastSeen = state.ok ? 'the cluster is ok, but not that' : state.reason;
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${lastSeen}`);
      await sleep(POLL_INTERVAL_MS);
    }
  }

  private async readState(): Promise<ClusterState> {
    const running = this.nodes.filter((node) => node.isRunning());
    if (running.length === 0) return { ok: false, reason: 'no node is running' };
    const problems: string[] = [];
    let agreed: { signature: string; entries: NodeEntry[]; by: ClusterNodeProcess } | undefined;
    for (const node of running) {
      try {
        const info = parseInfo(await this.command(node, ['CLUSTER', 'INFO']));
        if (info.get('cluster_state') !== 'ok') problems.push(`${node}: cluster_state:${info.get('cluster_state')}`);
        if (info.get('cluster_slots_ok') !== String(SLOT_COUNT)) {
          problems.push(`${node}: cluster_slots_ok:${info.get('cluster_slots_ok')}`);
        }
        if (info.get('cluster_known_nodes') !== String(this.nodes.length)) {
          problems.push(`${node}: cluster_known_nodes:${info.get('cluster_known_nodes')}`);
        }
        const entries = parseClusterNodes(await this.command(node, ['CLUSTER', 'NODES']));
        for (const other of running) {
          const entry = entries.find((candidate) => candidate.port === other.port);
          if (!entry) problems.push(`${node} does not know ${other}`);
          const failing = FAILING_FLAGS.filter((flag) => entry?.flags.has(flag));
          if (failing.length > 0) problems.push(`${node} sees ${other} as ${failing.join(',')}`);
        }
        const signature = topologySignature(entries);
        if (!agreed) agreed = { signature, entries, by: node };
        else if (agreed.signature !== signature) problems.push(`${node} disagrees with ${agreed.by} on the topology`);
        const listed = portsInClusterSlots(await this.reply(node, ['CLUSTER', 'SLOTS']));
        for (const other of running) {
          const entry = entries.find((candidate) => candidate.port === other.port);
          if (entry?.flags.has('slave') && !listed.has(other.port)) {
            problems.push(`${node} leaves replica ${other} out of CLUSTER SLOTS`);
          }
        }
        const self = entries.find((entry) => entry.flags.has('myself'));
        if (self && !self.flags.has('master')) {
          const replication = parseInfo(await this.command(node, ['INFO', 'replication']));
          const link = replication.get('master_link_status');
          if (link !== 'up') problems.push(`${node}: replica link to its primary is ${link}`);
        }
      } catch (error) {
        problems.push(`${node}: ${(error as Error).message}`);
      }
    }
    if (problems.length > 0 || !agreed) return { ok: false, reason: problems.join('; ') };
    return { ok: true, entries: agreed.entries };
  }

  private applyTopology(entries: NodeEntry[]): void {
    this.currentEntries = entries;
    for (const node of this.nodes) {
      const entry = entries.find((candidate) => candidate.port === node.port);
      if (!entry) continue;
      node.id = entry.id;
      node.role = entry.flags.has('master') ? 'primary' : 'replica';
      node.primaryId = entry.primaryId;
    }
  }
}

// ------------------------------------------------------------------ public entry point

/** Starts the nodes, forms the cluster and resolves once it is ok (see `TestRedisCluster.waitUntilOk`). */
export async function startRedisCluster({
  primaries = 3,
  replicasPerPrimary = 0,
  password,
  nodeTimeoutMs = DEFAULT_NODE_TIMEOUT_MS,
}: RedisClusterOptions = {}): Promise<TestRedisCluster> {
  if (!Number.isInteger(primaries) || primaries < 3) throw new Error(`a cluster needs at least 3 primaries, not ${primaries}`);
  if (!Number.isInteger(replicasPerPrimary) || replicasPerPrimary < 0) {
    throw new Error(`replicasPerPrimary must be a whole number ≥ 0, not ${replicasPerPrimary}`);
  }
  // Fail fast with the install hints.
  findRedisProgram('redis-server');
  findRedisProgram('redis-cli');

  const dir = mkdtempSync(path.join(tmpdir(), 'zim-gw-cluster-'));
  const taken = new Set<number>();
  const count = primaries * (1 + replicasPerPrimary);
  const launched = await Promise.allSettled(
    Array.from({ length: count }, () => launchNode(dir, taken, nodeTimeoutMs, password)),
  );
  const nodes = launched.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const cluster = new RedisCluster(nodes, password, dir);
  liveClusters.add(cluster);
  try {
    const failed = launched.find((outcome) => outcome.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await createCluster(nodes, replicasPerPrimary, password);
    await cluster.waitUntilOk();
  } catch (error) {
    await cluster.stopAll();
    throw error;
  }
  return cluster;
}
