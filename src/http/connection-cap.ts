import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What the cap did, for metrics. */
export interface ConnectionCapEvents {
  /** An idle connection was closed to make room for a new one. */
  idleClosed(): void;
  /** A new connection was closed at once: every open one had a request in flight. */
  refused(): void;
}

/**
 * At most `maxConnections` open client connections (HTTP_MAX_CONNECTIONS), without letting idle
 * ones lock anybody out: a connection that arrives at the cap closes the one idle longest (no
 * request in flight: kept alive between requests, or a client that connected and sent nothing
 * yet), since closing that cuts no request. Only when every open connection has a request in
 * flight is the newcomer refused. Node's own server.maxConnections would refuse it while idle
 * sockets (one cheap client holding many) kept the cap full.
 */
export function capConnections(server: Server, maxConnections: number, events: ConnectionCapEvents): void {
  /** Connections without a request in flight, the one idle longest first (a Set keeps insertion order). */
  const idle = new Set<Socket>();
  /** Connections with requests in flight, and how many (pipelined requests queue on one). */
  const busy = new Map<Socket, number>();

  server.on('connection', (socket: Socket) => {
    if (idle.size + busy.size >= maxConnections) {
      const longestIdle = idle.values().next();
      if (longestIdle.done === true) {
        socket.destroy();
        events.refused();
        return;
      }
      idle.delete(longestIdle.value);
      longestIdle.value.destroy();
      events.idleClosed();
    }
    idle.add(socket);
    socket.once('close', () => {
      idle.delete(socket);
      busy.delete(socket);
    });
  });

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    idle.delete(socket);
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    // 'close' comes once per response, answered or not.
    response.once('close', () => {
      const left = (busy.get(socket) ?? 1) - 1;
      if (left > 0) {
        busy.set(socket, left);
        return;
      }
      busy.delete(socket);
      // Idle from now on: to the back of the line.
      if (!socket.destroyed) idle.add(socket);
    });
  });
}
