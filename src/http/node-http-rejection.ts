/**
 * The status Node's HTTP server answers by itself when it drops a connection for `error`: a
 * request it could not parse (its llhttp `HPE_*` codes) or one that did not arrive within
 * HTTP_HEADERS_TIMEOUT_MS / HTTP_REQUEST_TIMEOUT_MS. The same choice as Node's socketOnError
 * (node:_http_server), which writes that status with `Connection: close` and closes the socket.
 * Undefined for any other error (a reset by the client): nothing is answered then.
 */
export function nodeRejectionStatus(error: unknown): number | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code !== 'string') return undefined;
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 431;
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 413;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408;
    default:
      return code.startsWith('HPE_') ? 400 : undefined;
  }
}

/** Every status nodeRejectionStatus can give, for metrics that show each from the start. */
export const NODE_REJECTION_STATUSES: readonly number[] = [400, 408, 413, 431];
