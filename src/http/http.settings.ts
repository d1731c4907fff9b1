import type { EnvReader } from '../config/env-reader.js';

export interface HttpSettings {
  readonly port: number;
  /** Request bodies above this are answered 413 before they are parsed. */
  readonly bodyLimitBytes: number;
  /**
   * Keys (object keys plus array items) a parsed body may hold in all: more is a 400 before
   * validation. Set by loadConfig from the largest valid body of POST /rooms.
   */
  readonly bodyLimitTotalKeys: number;
  /** Routes that take larger bodies (POST /rooms/batches), each with its own limits; set by loadConfig. */
  readonly routeBodyLimits: ReadonlyArray<{
    readonly method: string;
    readonly path: string;
    readonly bytes: number;
    readonly totalKeys: number;
  }>;
  /**
   * After SIGTERM: how long the gateway keeps accepting connections while readiness is already
   * 503 (load balancers take a moment to stop sending), before it closes the listener.
   */
  readonly shutdownGraceMs: number;
  /**
   * Node's server.headersTimeout: a client must finish sending the request headers within this
   * long of its first byte, or the connection gets 408 and is closed (slow-loris headers).
   */
  readonly headersTimeoutMs: number;
  /**
   * Node's server.requestTimeout: a client must finish sending the whole request (headers and
   * body) within this long, or it gets 408 and is closed (slow bodies). It covers receiving only:
   * once the body is in, the vendor call (ZEGO_CALL_DEADLINE_MS) is not cut by it.
   */
  readonly requestTimeoutMs: number;
  /**
   * Node's server.keepAliveTimeout: a connection idle this long after its last answer is closed
   * (Node announces it as Keep-Alive: timeout=N and closes 1 s later). Above the idle timeout of
   * the load balancers in front (60 s for the common ones), so they always close first and never
   * send a request on a connection the gateway is closing.
   */
  readonly keepAliveTimeoutMs: number;
  /**
   * Open client connections at most. At the cap, a new connection closes the one idle longest;
   * only when every connection has a request in flight is the new one refused (ConnectionCap).
   */
  readonly maxConnections: number;
}

/** PORT, SHUTDOWN_GRACE_MS, HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS, HTTP_KEEP_ALIVE_TIMEOUT_MS, HTTP_MAX_CONNECTIONS. */
export function readHttpSettings(read: EnvReader): HttpSettings {
  const port = read.int('PORT', { default: 3000, min: 0, max: 65535 });
  const shutdownGraceMs = read.int('SHUTDOWN_GRACE_MS', { default: 5000, min: 0, max: 120_000 });
  const headersTimeoutMs = read.int('HTTP_HEADERS_TIMEOUT_MS', { default: 10_000, min: 1000, max: 600_000 });
  const requestTimeoutMs = read.int('HTTP_REQUEST_TIMEOUT_MS', { default: 30_000, min: 1000, max: 600_000 });
  // Node enforces the same order when both are given to http.createServer().
  if (requestTimeoutMs < headersTimeoutMs) {
    read.problem('HTTP_REQUEST_TIMEOUT_MS', 'must be at least HTTP_HEADERS_TIMEOUT_MS');
  }
  const keepAliveTimeoutMs = read.int('HTTP_KEEP_ALIVE_TIMEOUT_MS', { default: 65_000, min: 1000, max: 600_000 });
  const maxConnections = read.int('HTTP_MAX_CONNECTIONS', { default: 1000, min: 1, max: 100_000 });
  // The key limits follow the rooms' settings: loadConfig sets them (until then, no body passes).
  return {
    port,
    bodyLimitBytes: 64 * 1024,
    bodyLimitTotalKeys: 0,
    routeBodyLimits: [],
    shutdownGraceMs,
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs,
    maxConnections,
  };
}
