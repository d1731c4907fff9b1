/**
 * Entry point: runs a TcpProxy (tcp-proxy.ts) and its HTTP control API as a process of their own,
 * so that a test's own load cannot delay what the proxy forwards. Started by tcp-proxy-process.ts.
 *
 * Environment:
 *   TCP_PROXY_TARGET (required) host:port to forward to; TCP_PROXY_PORT (0: a free port);
 *   TCP_PROXY_CONTROL_PORT (0); TCP_PROXY_SHAPING: a Shaping as JSON (none).
 * Prints one line once both listen:
 *   tcp proxy listening on port <port>, control port <port>, forwarding to <host>:<port>
 */
import type { AddressInfo } from 'node:net';
import { controlServer, TcpProxy, type Shaping, type TcpProxyTarget } from './tcp-proxy.js';

const HOST = '127.0.0.1';

function fail(message: string): never {
  process.stderr.write(`tcp proxy: ${message}\n`);
  process.exit(1);
}

function portFromEnv(name: string): number {
  const raw = process.env[name] ?? '';
  if (raw === '') return 0;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`${name} must be a port number`);
  return port;
}

function targetFromEnv(): TcpProxyTarget {
  const raw = process.env.TCP_PROXY_TARGET ?? '';
  const match = /^(.+):(\d{1,5})$/.exec(raw);
  if (!match) fail('set TCP_PROXY_TARGET to host:port');
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) };
}

function shapingFromEnv(): Shaping {
  const raw = process.env.TCP_PROXY_SHAPING ?? '';
  if (raw === '') return {};
  try {
    return JSON.parse(raw) as Shaping;
  } catch {
    fail('TCP_PROXY_SHAPING must be JSON');
  }
}

async function main(): Promise<void> {
  const target = targetFromEnv();
  const proxy = new TcpProxy(target, shapingFromEnv());
  const port = await proxy.listen(portFromEnv('TCP_PROXY_PORT'), HOST);
  const control = controlServer(proxy);
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject);
    control.listen(portFromEnv('TCP_PROXY_CONTROL_PORT'), HOST, () => resolve());
  });
  const controlPort = (control.address() as AddressInfo).port;

  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    control.closeAllConnections();
    Promise.all([proxy.close(), new Promise((resolve) => control.close(resolve))]).then(
      () => process.exit(0),
      (error: unknown) => fail(`stop failed: ${error instanceof Error ? error.message : String(error)}`),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // Only now: a parent that reads this line may stop the proxy at once, and must find the handlers set.
  process.stdout.write(
    `tcp proxy listening on port ${port}, control port ${controlPort}, forwarding to ${target.host}:${target.port}\n`,
  );
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
