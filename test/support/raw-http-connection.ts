/**
 * One client connection spoken byte by byte, for what fetch cannot send or show: `OPTIONS *`, a
 * malformed chunked body, which of several keep-alive connections the server closed and when.
 *
 *   const connection = await RawHttpConnection.open(port);
 *   const answer = await connection.request('GET /health/live HTTP/1.1\r\nHost: gw\r\n\r\n');
 *   await connection.closed; // the server closed it
 *
 * Depends on node built-ins only (the unit specs under src/ use it too).
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface RawHttpResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
  /** performance.now() when the whole response was in. */
  receivedAt: number;
}

export class RawHttpConnection {
  /** Settles (never rejects) once the connection is closed, by either side; resolves with performance.now() then. */
  readonly closed: Promise<number>;
  private buffer = '';
  private open = true;
  private waiting: { resolve: (response: RawHttpResponse) => void; reject: (error: Error) => void } | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.deliver();
    });
    // A reset from the server is one way of being closed; 'close' follows.
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.open = false;
        this.deliver();
        this.waiting?.reject(new Error(`connection closed before a whole response; received ${JSON.stringify(this.buffer)}`));
        this.waiting = undefined;
        resolve(performance.now());
      });
    });
  }

  /** Resolves once connected (the server may still close it at once). */
  static open(port: number, host = '127.0.0.1'): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawHttpConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  isOpen(): boolean {
    return this.open;
  }

  /** What arrived and no response was taken from yet. */
  unread(): string {
    return this.buffer;
  }

  /** Writes raw bytes (a request, or part of one). */
  send(text: string): void {
    this.socket.write(text, 'latin1');
  }

  /** Writes `text` and resolves with the next response on this connection. */
  request(text: string): Promise<RawHttpResponse> {
    if (this.waiting) throw new Error('one request at a time');
    const response = new Promise<RawHttpResponse>((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
    this.send(text);
    this.deliver();
    return response;
  }

  /** Closes the connection from the client's side. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Hands a complete response to the request waiting for it. */
  private deliver(): void {
    if (!this.waiting) return;
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end === -1) return;
    const [statusLine = '', ...lines] = this.buffer.slice(0, end).split('\r\n');
    const headers = Object.fromEntries(
      lines.map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
      }),
    );
    const rest = this.buffer.slice(end + 4);
    const length = headers['content-length'];
    // Without a length, the body runs to the end of the connection.
    const bodyLength = length === undefined ? (this.open ? undefined : rest.length) : Number(length);
    if (bodyLength === undefined || rest.length < bodyLength) return;
    this.buffer = rest.slice(bodyLength);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting.resolve({
      status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]),
      headers,
      body: rest.slice(0, bodyLength),
      receivedAt: performance.now(),
    });
  }
}
