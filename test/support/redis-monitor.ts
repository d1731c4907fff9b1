/**
 * Watches every command a Redis server runs (MONITOR) on a raw connection of its own, so a test
 * can count the calls made for one key. ioredis's monitor() is not used: on a busy shared server
 * its ready check races the first monitor lines ("Command queue state error").
 */
import { once } from 'node:events';
import net from 'node:net';

export interface RedisMonitor {
  /** The commands seen so far, each as its arguments (`["evalsha", "<sha>", "1", "<key>", ...]`). */
  commands(): string[][];
  stop(): void;
}

/** Starts watching; resolves once Redis confirmed MONITOR, so every later command is seen. */
export async function monitorRedis(url: string): Promise<RedisMonitor> {
  // The test servers have no password (test/support/redis-server.ts).
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port || 6379), hostname);
  await once(socket, 'connect');
  socket.setEncoding('utf8');
  const seen: string[][] = [];
  let buffered = '';
  let confirmed: () => void = () => undefined;
  const ok = new Promise<void>((resolve) => {
    confirmed = resolve;
  });
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let end: number;
    while ((end = buffered.indexOf('\r\n')) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (line === '+OK') confirmed();
      else if (line.startsWith('+')) seen.push(monitorArguments(line));
    }
  });
  socket.on('error', () => undefined);
  socket.write('MONITOR\r\n');
  await ok;
  return { commands: () => seen, stop: () => socket.destroy() };
}

/** `+1700000000.1 [0 127.0.0.1:5000] "evalsha" "abc" "1" "k"` -> ["evalsha", "abc", "1", "k"]. */
function monitorArguments(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map(([, quoted]) => quoted!.replace(/\\(.)/g, '$1'));
}
