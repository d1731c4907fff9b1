import type { ServerResponse } from 'node:http';
import type { ErrorBody, FieldError } from './error-body.js';

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
/** Distinct (status, message) pairs kept; messages are fixed phrases, so this is never reached in practice. */
const MAX_PREPARED = 256;

/**
 * Writes error bodies. Refusals differ mostly by their request id: the JSON before it is prepared
 * once per status and message, and the field errors after it once per list (a refused body
 * answered again from memory carries the same list), so a refusal storm costs a concatenation per
 * answer rather than a serialisation. The answer goes straight to Node's response: no ETag (nobody
 * revalidates an error), no content negotiation.
 */
export class ErrorBodyWriter {
  private readonly heads = new Map<string, string>();
  private readonly fieldTails = new WeakMap<FieldError[], { more: number | undefined; tail: string }>();

  write(response: ServerResponse, body: ErrorBody): void {
    const json = this.serialise(body);
    response.writeHead(body.statusCode, {
      'Content-Type': JSON_CONTENT_TYPE,
      'Content-Length': Buffer.byteLength(json),
    });
    response.end(json);
  }

  /** The body's JSON, the same text as JSON.stringify(body). */
  serialise(body: ErrorBody): string {
    const keys = Object.keys(body).length;
    const { errors, moreErrors } = body;
    if (keys === 4) return `${this.head(body)}${JSON.stringify(body.requestId)}}`;
    if (errors !== undefined && keys === (moreErrors === undefined ? 5 : 6)) {
      return `${this.head(body)}${JSON.stringify(body.requestId)}${this.tail(errors, moreErrors)}`;
    }
    return JSON.stringify(body);
  }

  /** `{"statusCode":…,"error":…,"message":…,"requestId":` */
  private head({ statusCode, error, message }: ErrorBody): string {
    const key = `${statusCode}\n${error}\n${message}`;
    let head = this.heads.get(key);
    if (head === undefined) {
      head = `{"statusCode":${statusCode},"error":${JSON.stringify(error)},"message":${JSON.stringify(message)},"requestId":`;
      if (this.heads.size >= MAX_PREPARED) this.heads.clear();
      this.heads.set(key, head);
    }
    return head;
  }

  /** `,"errors":[…],"moreErrors":…}` */
  private tail(errors: FieldError[], more: number | undefined): string {
    const kept = this.fieldTails.get(errors);
    if (kept !== undefined && kept.more === more) return kept.tail;
    const tail = `,"errors":${JSON.stringify(errors)}${more === undefined ? '' : `,"moreErrors":${more}`}}`;
    this.fieldTails.set(errors, { more, tail });
    return tail;
  }
}
