import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import type { ConnectionCapEvents } from '../http/connection-cap.js';
import { NODE_REJECTION_STATUSES, nodeRejectionStatus } from '../http/node-http-rejection.js';

/**
 * What happens to client connections below the requests: those Node's HTTP server closed with an
 * answer of its own (counted per connection, so also when no request was in flight, e.g. bytes
 * that are no HTTP request at all), and what HTTP_MAX_CONNECTIONS did. Returns the events the
 * connection cap reports to.
 */
export function registerHttpConnectionMetrics(registry: Registry, server: Server): ConnectionCapEvents {
  const rejected = new Counter({
    name: 'zim_gateway_http_rejected_connections_total',
    help:
      "Client connections Node's HTTP server closed with its own answer, by status: 400 a request it could not parse, " +
      '408 one slower than HTTP_HEADERS_TIMEOUT_MS / HTTP_REQUEST_TIMEOUT_MS, 413 / 431 chunk extensions / headers ' +
      'too large; a request in flight then also counts in zim_gateway_http_requests_total with that status',
    labelNames: ['status'],
    registers: [registry],
  });
  for (const status of NODE_REJECTION_STATUSES) rejected.inc({ status: String(status) }, 0);
  server.on('connection', (socket: Socket) => {
    socket.once('close', () => {
      const status = nodeRejectionStatus(socket.errored);
      if (status !== undefined) rejected.inc({ status: String(status) });
    });
  });

  const capped = new Counter({
    name: 'zim_gateway_http_connection_cap_total',
    help:
      'What HTTP_MAX_CONNECTIONS did to connections arriving at the cap: closed_idle (the connection idle longest ' +
      'was closed to make room), refused (every open connection had a request in flight)',
    labelNames: ['action'],
    registers: [registry],
  });
  for (const action of ['closed_idle', 'refused']) capped.inc({ action }, 0);
  return {
    idleClosed: () => capped.inc({ action: 'closed_idle' }),
    refused: () => capped.inc({ action: 'refused' }),
  };
}
