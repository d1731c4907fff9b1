/**
 * When requests really reached a port on loopback, by the kernel's clock: `tcpdump` captures the
 * TCP segments to the port whose payload starts with "POST" (the first segment of each request),
 * and this harness reads its pcap stream, so a spec can count calls per window on times no
 * process's event loop could have bunched (the fake vendor stamps arrivals on its own loop).
 *
 *   const capture = await startLoopbackCapture({ port: 8089 });   // listening, proven by a marker
 *   ... load ...
 *   const arrivals = await capture.stop();   // each POST: kernel time, request target, source port
 *
 * - Loopback only. Over TLS (`{ tls: true }`) the requests cannot be read: a segment to the port
 *   that holds an application-data record of a request's size counts as one request, with no
 *   target. An HTTP/1.1 connection carries one request at a time, each written as one record; the
 *   handshake's and the alerts' records are far smaller, and a request sent right after the
 *   handshake rides in the same segment as the client's last flight, so every record header of a
 *   segment is read. Count them against the fake's record.
 * - Start resolves once tcpdump said "listening on lo" and a marker request sent to the port came
 *   back through the capture: from then on nothing sent is missed.
 * - Stop sends another marker and waits until it came through (everything sent before it was
 *   read), then SIGINT; it resolves once tcpdump exited and its output was read to the end. Its
 *   report of packets dropped by the kernel is kept (`droppedByKernel`).
 * - Needs root (or CAP_NET_RAW) and tcpdump (`apt-get install -y tcpdump`).
 * - Every tcpdump is tracked in this module's own ChildRegistry: `stopAllLoopbackCaptures()` (in
 *   afterAll) ends the ones still running; jest's global teardown kills what a dead worker left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { waitFor } from './async-probes.js';
import { ChildRegistry, exitPromise, type ExitStatus } from './child-registry.js';

export interface KernelArrival {
  /** When the segment crossed loopback: the kernel's wall clock, ms with µs precision. */
  at: number;
  /** The request target, e.g. `/?Action=CreateRoom&...` (cut where the snapshot ends); undefined over TLS. */
  target: string | undefined;
  /** The client's port: which connection it came on. */
  sourcePort: number;
}

export interface LoopbackCapture {
  readonly port: number;
  readonly pid: number;
  /** The POSTs seen so far (markers left out). */
  arrivals(): KernelArrival[];
  /** Flushes (a marker through the capture), SIGINT, waits for tcpdump's exit; resolves with every POST seen. */
  stop(): Promise<KernelArrival[]>;
  /** tcpdump's count of packets the kernel dropped (known once stopped; 0 before). */
  droppedByKernel(): number;
}

/** Enough for the request line of a signed vendor call (about 200 bytes) behind the headers. */
const SNAPSHOT_BYTES = 1024;
/**
 * Over TLS, the smallest application-data segment taken for a request: a signed vendor call is
 * several hundred bytes; a TLS 1.3 client Finished is about 60, an alert about 30.
 */
const TLS_REQUEST_MIN_BYTES = 200;
const TLS_RECORD_HEADER_BYTES = 5;
const TLS_APPLICATION_DATA = 0x17;
/** Requests to this path prove the capture live (at start) and read up to them (at stop). */
const MARKER_PATH = '/loopback-capture-marker/';
/** Deadlines: tcpdump listening, a marker through the capture, tcpdump's exit after SIGINT. */
const LISTENING_WITHIN_MS = 10_000;
const MARKER_WITHIN_MS = 5_000;
const EXIT_WITHIN_MS = 5_000;

/** This harness's children only: stop-all here never touches the other harnesses' processes. */
const children = new ChildRegistry();

/** Ends every capture still running (call in afterAll). */
export async function stopAllLoopbackCaptures(): Promise<void> {
  await Promise.all(children.running().map((child) => interrupt(child)));
}

/** tcpdump on the PATH, or where Debian and others put it (sbin is often off a test's PATH). */
function tcpdumpProgram(): string {
  const places = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin'].filter(Boolean).map((dir) => path.join(dir, 'tcpdump'));
  const found = places.find((place) => existsSync(place));
  if (!found) throw new Error('tcpdump is not installed (`apt-get install -y tcpdump`): the loopback capture needs it');
  return found;
}

/** SIGINT (tcpdump writes out what it holds and its counts), SIGKILL after a deadline; resolves once it exited. */
async function interrupt(child: ChildProcess): Promise<ExitStatus> {
  const exited = exitPromise(child);
  child.kill('SIGINT');
  const deadline = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS);
  try {
    return await exited;
  } finally {
    clearTimeout(deadline);
  }
}

/** Sends the request line of a marker to the port on a connection of its own, closed once the capture saw it. */
async function sendMarker(port: number, capture: PcapReader, what: string): Promise<void> {
  const id = randomUUID();
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined); // whatever the server makes of it, the segment has left
  try {
    socket.write(`POST ${MARKER_PATH}${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    await waitFor(() => capture.markersSeen.has(id), { what: `the loopback capture's ${what} marker`, timeoutMs: MARKER_WITHIN_MS });
  } finally {
    socket.destroy();
  }
}

export async function startLoopbackCapture(options: { port: number; tls?: boolean }): Promise<LoopbackCapture> {
  const { port } = options;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a port: ${port}`);
  // Segments to the port whose TCP payload begins with "POST" (0x504f5354): one per request (and
  // the markers, plain even to a TLS port). Over TLS every segment that carries data (IPv4:
  // loopback's 127.0.0.1): its records are read here.
  const payload = '((tcp[12:1] & 0xf0) >> 2)';
  const filter = options.tls
    ? `tcp dst port ${port} and ip[2:2] - ((ip[0] & 0x0f) << 2) - ${payload} > 0`
    : `tcp dst port ${port} and tcp[${payload}:4] = 0x504f5354`;
  const child = spawn(
    tcpdumpProgram(),
    ['-i', 'lo', '-n', '-U', '--immediate-mode', '-s', String(SNAPSHOT_BYTES), '-w', '-', filter],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.track(child);
  const exited = exitPromise(child);
  const reader = new PcapReader(options.tls === true);
  child.stdout.on('data', (chunk: Buffer) => reader.push(chunk));
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-10_000);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`tcpdump did not say it was listening within ${LISTENING_WITHIN_MS} ms`)), LISTENING_WITHIN_MS);
      const onData = (): void => {
        if (stderr.includes('listening on lo')) finish();
      };
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        child.stderr.off('data', onData);
        if (error) reject(error);
        else resolve();
      };
      child.stderr.on('data', onData);
      child.once('error', (error) => finish(error));
      void exited.then(({ code, signal }) => finish(new Error(`tcpdump exited before listening (code ${code}, signal ${signal})`)));
    });
    await sendMarker(port, reader, 'start');
  } catch (error) {
    await interrupt(child);
    throw new Error(`${(error as Error).message}\n--- tcpdump stderr ---\n${stderr}`, { cause: error });
  }

  let stopped: Promise<KernelArrival[]> | undefined;
  const stop = async (): Promise<KernelArrival[]> => {
    try {
      // Everything sent before the marker was read once the marker was: loopback keeps their order.
      await sendMarker(port, reader, 'stop');
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- tcpdump stderr ---\n${stderr}`, { cause: error });
    } finally {
      // 'close' comes after tcpdump's last bytes were read.
      await interrupt(child);
    }
    if (reader.problem) throw new Error(`the loopback capture could not read tcpdump's output: ${reader.problem}`);
    return reader.arrivals();
  };

  return {
    port,
    pid: child.pid!,
    arrivals: () => reader.arrivals(),
    stop: () => (stopped ??= stop()),
    droppedByKernel: () => Number(/(\d+) packets? dropped by kernel/.exec(stderr)?.[1] ?? 0),
  };
}

// ------------------------------------------------------------------ the pcap stream

const PCAP_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
/** Link-layer header length by pcap link type: Ethernet (what `lo` gives), Linux cooked v1 and v2, BSD loopback. */
const LINK_HEADER_BYTES: Record<number, number> = { 1: 14, 113: 16, 276: 20, 0: 4 };

/** Reads tcpdump's `-w -` output as it arrives: the POSTs, and the markers apart. */
class PcapReader {
  private buffered: Buffer = Buffer.alloc(0);
  private readUInt32: ((buffer: Buffer, offset: number) => number) | undefined;
  private fractionPerMs = 1000;
  private linkHeaderBytes = 14;
  private readonly seen: KernelArrival[] = [];
  readonly markersSeen = new Set<string>();
  problem: string | undefined;

  constructor(private readonly tls: boolean) {}

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    try {
      this.drain();
    } catch (error) {
      this.problem ??= (error as Error).message;
    }
  }

  arrivals(): KernelArrival[] {
    return [...this.seen];
  }

  private drain(): void {
    if (!this.readUInt32) {
      if (this.buffered.length < PCAP_HEADER_BYTES) return;
      this.readFileHeader();
      this.buffered = this.buffered.subarray(PCAP_HEADER_BYTES);
    }
    const read = this.readUInt32!;
    while (this.buffered.length >= RECORD_HEADER_BYTES) {
      const capturedBytes = read(this.buffered, 8);
      if (this.buffered.length < RECORD_HEADER_BYTES + capturedBytes) return;
      const at = read(this.buffered, 0) * 1000 + read(this.buffered, 4) / this.fractionPerMs;
      this.readPacket(at, this.buffered.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + capturedBytes));
      this.buffered = this.buffered.subarray(RECORD_HEADER_BYTES + capturedBytes);
    }
  }

  private readFileHeader(): void {
    const little = this.buffered.readUInt32LE(0);
    const big = this.buffered.readUInt32BE(0);
    const magic = [little, big].find((m) => m === 0xa1b2c3d4 || m === 0xa1b23c4d);
    if (magic === undefined) throw new Error('not a pcap stream');
    this.readUInt32 = magic === little ? (b, o) => b.readUInt32LE(o) : (b, o) => b.readUInt32BE(o);
    // Microsecond timestamps, or nanosecond ones (0xa1b23c4d).
    this.fractionPerMs = magic === 0xa1b23c4d ? 1_000_000 : 1000;
    const linkType = this.readUInt32(this.buffered, 20) & 0xffff;
    const linkHeaderBytes = LINK_HEADER_BYTES[linkType];
    if (linkHeaderBytes === undefined) throw new Error(`link type ${linkType} is not one of loopback's`);
    this.linkHeaderBytes = linkHeaderBytes;
  }

  private readPacket(at: number, packet: Buffer): void {
    const ip = packet.subarray(this.linkHeaderBytes);
    const version = ip[0]! >> 4;
    const ipHeaderBytes = version === 4 ? (ip[0]! & 0x0f) * 4 : version === 6 ? 40 : -1;
    if (ipHeaderBytes < 0) return;
    const tcp = ip.subarray(ipHeaderBytes);
    if (tcp.length < 20) return;
    const sourcePort = tcp.readUInt16BE(0);
    const payload = tcp.subarray((tcp[12]! >> 4) * 4);
    if (this.tls && carriesTlsRequest(payload)) {
      this.seen.push({ at, target: undefined, sourcePort });
      return;
    }
    const line = payload.toString('latin1', 0, Math.min(payload.length, SNAPSHOT_BYTES));
    const requestLine = /^POST (\S+)/.exec(line);
    if (!requestLine) return;
    const target = requestLine[1]!;
    if (target.startsWith(MARKER_PATH)) this.markersSeen.add(target.slice(MARKER_PATH.length));
    else this.seen.push({ at, target, sourcePort });
  }
}

/** Whether a segment's TLS records (as far as the snapshot shows their headers) include one of a request's size. */
function carriesTlsRequest(payload: Buffer): boolean {
  for (let at = 0; at + TLS_RECORD_HEADER_BYTES <= payload.length; ) {
    const length = payload.readUInt16BE(at + 3);
    if (payload[at] === TLS_APPLICATION_DATA && length >= TLS_REQUEST_MIN_BYTES) return true;
    at += TLS_RECORD_HEADER_BYTES + length;
  }
  return false;
}
