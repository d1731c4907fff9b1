/**
 * fetch() that keeps every exchange, so a suite can check afterwards that no response (body or
 * header) ever carried a secret; each response is also recorded for the whole-suite secret scan.
 */
import { recordEmission, withoutQuery } from './secret-scan.js';

export interface RecordedExchange {
  method: string;
  url: string;
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
  /** The raw response body. */
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export class HttpRecorder {
  readonly exchanges: RecordedExchange[] = [];

  async request(url: string, init: RequestInit = {}): Promise<RecordedExchange> {
    const response = await fetch(url, init);
    const text = await response.text();
    const json = jsonOrUndefined(text);
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    const exchange: RecordedExchange = {
      method: init.method ?? 'GET',
      url,
      status: response.status,
      headers,
      text,
      json,
    };
    this.exchanges.push(exchange);
    // The URL is the test's own input (some put a key in its query on purpose): not recorded.
    recordEmission('http', `${formatExchange({ ...exchange, url: withoutQuery(url) })}\n\n`);
    return exchange;
  }

  /** Every response as text: status line, headers and body. */
  transcript(): string {
    return this.exchanges.map(formatExchange).join('\n\n');
  }
}

/** The body parsed as JSON, or undefined when it is not JSON. */
export function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One response as text: `METHOD url -> status`, the headers, a blank line, the body. */
export function formatExchange(e: Pick<RecordedExchange, 'method' | 'url' | 'status' | 'headers' | 'text'>): string {
  const headers = Object.entries(e.headers).map(([k, v]) => `${k}: ${v}`).join('\n');
  return `${e.method} ${e.url} -> ${e.status}\n${headers}\n\n${e.text}`;
}
