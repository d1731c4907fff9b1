import { describe, expect, it } from '@jest/globals';
import type { Socket } from 'node:net';
import { answeredStatus, CLIENT_CLOSED_STATUS } from './client-went-away.js';

/** A response that ended with its socket errored by `code` (as Node's HTTP server leaves it), or not. */
function response(state: { finished?: boolean; headersSent?: boolean; socketError?: string; statusCode?: number }) {
  const errored = state.socketError === undefined ? null : Object.assign(new Error('socket'), { code: state.socketError });
  return {
    statusCode: state.statusCode ?? 200,
    writableFinished: state.finished ?? false,
    headersSent: state.headersSent ?? false,
    socket: { errored } as unknown as Socket,
  };
}

describe('answeredStatus', () => {
  it('is the answer sent when it finished, whatever happened to the socket after', () => {
    expect(answeredStatus(response({ finished: true, statusCode: 201 }))).toBe(201);
    expect(answeredStatus(response({ finished: true, statusCode: 201, socketError: 'ECONNRESET' }))).toBe(201);
  });

  it("is Node's own answer when its HTTP server rejected the request before ours started", () => {
    expect(answeredStatus(response({ socketError: 'HPE_INVALID_CHUNK_SIZE' }))).toBe(400);
    expect(answeredStatus(response({ socketError: 'HPE_INVALID_CONSTANT' }))).toBe(400);
    expect(answeredStatus(response({ socketError: 'ERR_HTTP_REQUEST_TIMEOUT' }))).toBe(408);
    expect(answeredStatus(response({ socketError: 'HPE_CHUNK_EXTENSIONS_OVERFLOW' }))).toBe(413);
    expect(answeredStatus(response({ socketError: 'HPE_HEADER_OVERFLOW' }))).toBe(431);
  });

  it('is 499 when the caller left: no error, a reset, or our answer begun when Node dropped the connection', () => {
    expect(answeredStatus(response({}))).toBe(CLIENT_CLOSED_STATUS);
    expect(answeredStatus(response({ socketError: 'ECONNRESET' }))).toBe(CLIENT_CLOSED_STATUS);
    expect(answeredStatus(response({ headersSent: true, socketError: 'HPE_INVALID_CHUNK_SIZE' }))).toBe(CLIENT_CLOSED_STATUS);
    expect(answeredStatus({ statusCode: 200, writableFinished: false })).toBe(CLIENT_CLOSED_STATUS);
  });
});
