import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import { GatewayError } from './gateway-error.js';
import { currentRequestProgress } from './request-progress.js';
import { RequestValidationError } from './request-validation.error.js';

/** What reading a body gives, before it is parsed. */
export interface JsonBodyRead {
  /** The raw bytes, as they came. */
  readonly raw: Buffer;
  /** Whether they are valid UTF-8 (the field at fault is named from them when not). */
  readonly validUtf8: boolean;
}

/** Whether the request announces a body at all (an empty one counts as none). */
export function hasBody(request: Pick<IncomingMessage, 'headers'>): boolean {
  return request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
}

/** `charset=…` in a Content-Type, quoted or not. */
const CHARSET_PARAMETER = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i;
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Reads a JSON body under a byte limit, turning every failure into the gateway's answer; parsing
 * is a step of its own (parseJsonBody), so that a body refused before is recalled by its bytes
 * without being parsed again. Compressed bodies are refused rather than inflated: a small gzip
 * can expand far beyond the limit. JSON between systems is UTF-8 (RFC 8259): another charset is
 * refused, and the bytes are checked natively, since decoding them would turn invalid UTF-8 into
 * U+FFFD without a word. What express.json did, without its layers (content negotiation, a
 * decoder, a second stream reader), which a refusal storm paid for on every body.
 */
export class JsonBodyReader {
  constructor(private readonly limitBytes: number) {}

  read(request: Request): Promise<JsonBodyRead> {
    // Announced too large: answered at once, not after the body. Its bytes are dropped as they
    // come, under UnreadBodyMiddleware's grace, rather than the connection closed with the answer:
    // closed under a client still writing, it is reset, and the client sees EPIPE, not its 413.
    if (Number(request.headers['content-length'] ?? 0) > this.limitBytes) return Promise.reject(tooLarge());
    const charset = CHARSET_PARAMETER.exec(request.headers['content-type'] ?? '');
    if (charset !== null && (charset[1] ?? charset[2] ?? '').toLowerCase() !== 'utf-8') {
      return Promise.reject(new GatewayError(415, 'Request body charset must be utf-8'));
    }
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      return Promise.reject(new GatewayError(415, `Content-Encoding ${encoding} is not accepted; send identity`));
    }
    // Receiving the body is the client's part: a request overdue here names it.
    const leave = currentRequestProgress()?.enter('request body');
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const settle = (error: GatewayError | undefined): void => {
        request.off('data', onData);
        request.off('end', onEnd);
        request.off('error', onError);
        request.off('close', onClose);
        leave?.();
        if (error === undefined) {
          const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
          resolve({ raw, validUtf8: isUtf8(raw) });
        } else {
          // The rest is dropped as it comes, as Node drops a body nobody read, so that a client that
          // sent it whole keeps its connection; UnreadBodyMiddleware closes one whose rest is slow.
          request.resume();
          reject(error);
        }
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size > this.limitBytes) settle(tooLarge());
        else chunks.push(chunk);
      };
      const onEnd = (): void => settle(undefined);
      const onError = (): void => settle(unreadable());
      // Closed before its end: the client went away mid-body.
      const onClose = (): void => settle(unreadable());
      request.on('data', onData);
      request.once('end', onEnd);
      request.once('error', onError);
      request.once('close', onClose);
    });
  }
}

/** The body's JSON value (any JSON value; an empty body is an empty object), or a 400 naming the body. */
export function parseJsonBody(raw: Buffer): unknown {
  // A byte-order mark is allowed before the text, as a decoder reading UTF-8 allows it.
  const text = (raw.subarray(0, 3).equals(UTF8_BOM) ? raw.subarray(3) : raw).toString('utf8');
  if (text.length === 0) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RequestValidationError([{ field: 'body', reason: 'must be valid JSON' }]);
  }
}

function tooLarge(): GatewayError {
  return new GatewayError(413, 'Request body is larger than the limit');
}

function unreadable(): RequestValidationError {
  return new RequestValidationError([{ field: 'body', reason: 'could not be read' }]);
}
