/**
 * The batch API as a test speaks it: submit, read, cancel and wait for the end of a batch through
 * one gateway with one API key. Answers come back whole (status, headers, body) for assertions.
 */
import type { BatchRoomsPage, BatchRoomView, BatchSummary } from '../../src/rooms/batches/room-batch.js';
import type { GatewayProcess } from './gateway-process.js';
import { waitFor } from './async-probes.js';

export interface BatchAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export type BatchRoom = BatchRoomView;
export type BatchBody = BatchSummary & BatchRoomsPage;

export interface BatchClient {
  submit(body: unknown, headers?: Record<string, string>): Promise<BatchAnswer>;
  get(batchId: string, query?: string): Promise<BatchAnswer>;
  cancel(batchId: string): Promise<BatchAnswer>;
  /** Every room of the batch, following nextCursor page by page. */
  allRooms(batchId: string, pageSize?: number): Promise<BatchRoom[]>;
  /** Polls until the batch has ended (finishedAt set); fails after timeoutMs. */
  untilEnded(batchId: string, timeoutMs?: number): Promise<BatchBody>;
}

/** `rooms` rooms with ids `<prefix>-0`, `<prefix>-1`, ... */
export function roomsNamed(prefix: string, rooms: number): Array<{ roomId: string }> {
  return Array.from({ length: rooms }, (_, index) => ({ roomId: `${prefix}-${index}` }));
}

export function batchClient(gateway: GatewayProcess | (() => GatewayProcess), key: string): BatchClient {
  const url = (): string => (typeof gateway === 'function' ? gateway() : gateway).url;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<BatchAnswer> => {
    const response = await fetch(`${url()}${path}`, {
      method,
      headers: { Authorization: `Bearer ${key}`, ...(body !== undefined && { 'Content-Type': 'application/json' }), ...headers },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
  };
  const client: BatchClient = {
    submit: (body, headers) => call('POST', '/rooms/batches', body, headers),
    get: (batchId, query = '') => call('GET', `/rooms/batches/${batchId}${query}`),
    cancel: (batchId) => call('DELETE', `/rooms/batches/${batchId}`),
    async allRooms(batchId, pageSize = 100) {
      const rooms: BatchRoom[] = [];
      let cursor: string | undefined = '0';
      while (cursor !== undefined) {
        const page = await client.get(batchId, `?limit=${pageSize}&cursor=${cursor}`);
        if (page.status !== 200) throw new Error(`GET of batch ${batchId} answered ${page.status}`);
        const body = page.body as unknown as BatchBody;
        rooms.push(...body.rooms);
        cursor = body.nextCursor;
      }
      return rooms;
    },
    async untilEnded(batchId, timeoutMs = 30_000) {
      let last: BatchBody | undefined;
      await waitFor(
        async () => {
          const answer = await client.get(batchId, '?limit=1');
          last = answer.body as unknown as BatchBody;
          return answer.status === 200 && last.finishedAt !== undefined;
        },
        { timeoutMs, intervalMs: 100, what: `the end of batch ${batchId}` },
      );
      return last!;
    },
  };
  return client;
}
