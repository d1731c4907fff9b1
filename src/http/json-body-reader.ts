import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import express, { type Request, type Response } from 'express';
import { GatewayError } from './gateway-error.js';
import { currentRequestProgress } from './request-progress.js';
import { RequestValidationError } from './request-validation.error.js';

/** What reading a body learnt besides the parsed value, which is on request.body. */
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

/**
 * Reads and parses a JSON body (express.json) under a byte limit, turning every failure into
 * the gateway's answer. Compressed bodies are refused rather than inflated: a small gzip can
 * expand far beyond the limit. express.json decodes invalid UTF-8 without a word (as U+FFFD), so
 * the raw bytes are checked first, natively.
 */
export class JsonBodyReader {
  private readonly parse: express.RequestHandler;

  constructor(private readonly limitBytes: number) {
    this.parse = express.json({
      limit: limitBytes,
      inflate: false,
      strict: false,
      type: 'application/json',
      verify: checkEncoding,
    });
  }

  read(request: Request, response: Response): Promise<JsonBodyRead> {
    // Announced too large: answered at once, not after reading (and discarding) the whole body.
    if (Number(request.headers['content-length'] ?? 0) > this.limitBytes) {
      response.setHeader('Connection', 'close');
      return Promise.reject(tooLarge());
    }
    // Receiving the body is the client's part: a request overdue here names it.
    const leave = currentRequestProgress()?.enter('request body');
    return new Promise((resolve, reject) => {
      this.parse(request, response, (error?: unknown) => {
        leave?.();
        if (error) reject(bodyError(error, request));
        else resolve(rawBodies.get(request) ?? { raw: EMPTY, validUtf8: true });
      });
    });
  }
}

const rawBodies = new WeakMap<IncomingMessage, JsonBodyRead>();
const EMPTY = Buffer.alloc(0);

/** express.json's verify hook: the raw bytes, before they are decoded. */
function checkEncoding(request: IncomingMessage, _response: unknown, raw: Buffer, charset: string): void {
  // JSON between systems is UTF-8 (RFC 8259); other "utf-" charsets would be decoded as such.
  if (charset !== 'utf-8') throw Object.assign(new Error('charset must be utf-8'), { type: 'charset.unsupported' });
  rawBodies.set(request, { raw, validUtf8: isUtf8(raw) });
}

function tooLarge(): GatewayError {
  return new GatewayError(413, 'Request body is larger than the limit');
}

function bodyError(error: unknown, request: Request): GatewayError {
  const type = (error as { type?: string }).type;
  switch (type) {
    case 'entity.too.large':
      return tooLarge();
    case 'encoding.unsupported':
      return new GatewayError(415, `Content-Encoding ${request.headers['content-encoding'] ?? ''} is not accepted; send identity`);
    case 'charset.unsupported':
      return new GatewayError(415, 'Request body charset must be utf-8');
    // 400s name the field like every validation error: here the body as a whole.
    case 'entity.parse.failed':
      return new RequestValidationError([{ field: 'body', reason: 'must be valid JSON' }]);
    default:
      return new RequestValidationError([{ field: 'body', reason: 'could not be read' }]);
  }
}
