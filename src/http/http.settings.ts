import type { EnvReader } from '../config/env-reader.js';

export interface HttpSettings {
  readonly port: number;
  /** Request bodies above this are answered 413 before they are parsed. */
  readonly bodyLimitBytes: number;
  /** Routes that take larger bodies (POST /rooms/batches), each with its own limit; set by loadConfig. */
  readonly routeBodyLimits: ReadonlyArray<{ readonly method: string; readonly path: string; readonly bytes: number }>;
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
}

/** PORT, SHUTDOWN_GRACE_MS, HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS. */
export function readHttpSettings(read: EnvReader): HttpSettings {
  const port = read.int('PORT', { default: 3000, min: 0, max: 65535 });
  const shutdownGraceMs = read.int('SHUTDOWN_GRACE_MS', { default: 5000, min: 0, max: 120_000 });
  const headersTimeoutMs = read.int('HTTP_HEADERS_TIMEOUT_MS', { default: 10_000, min: 1000, max: 600_000 });
  const requestTimeoutMs = read.int('HTTP_REQUEST_TIMEOUT_MS', { default: 30_000, min: 1000, max: 600_000 });
  // Node enforces the same order when both are given to http.createServer().
  if (requestTimeoutMs < headersTimeoutMs) {
    read.problem('HTTP_REQUEST_TIMEOUT_MS', 'must be at least HTTP_HEADERS_TIMEOUT_MS');
  }
  return { port, bodyLimitBytes: 64 * 1024, routeBodyLimits: [], shutdownGraceMs, headersTimeoutMs, requestTimeoutMs };
}
