import type { EnvReader } from '../../config/env-reader.js';
import { Secret } from '../../config/secret.js';

export interface BatchSettings {
  /** BATCH_MAX_ROOMS: rooms one batch may hold. */
  readonly maxRooms: number;
  /** BATCH_MAX_PENDING_ROOMS_PER_CLIENT: rooms of one client not yet sent, over all its batches. */
  readonly maxPendingRoomsPerClient: number;
  /** BATCH_TTL_S: how long a batch and its results are kept after it ends. */
  readonly ttlSeconds: number;
  /** BATCH_CONCURRENCY: rooms of one client this replica works on at once (waiting for a slot included). */
  readonly concurrency: number;
  /** BATCH_BODY_LIMIT_BYTES: the largest body POST /rooms/batches accepts (other routes keep theirs). */
  readonly bodyLimitBytes: number;
  /** BATCH_CALLBACK_HOSTS: the only hosts a callbackUrl may name; empty disables callbacks. */
  readonly callbackHosts: readonly string[];
  /** BATCH_CALLBACK_SECRET (or _FILE): the HMAC-SHA256 key of X-Signature; required with callback hosts. */
  readonly callbackSecret?: Secret;
}

/** The absolute bounds of BATCH_MAX_ROOMS: the DTO refuses longer lists before they are validated room by room. */
export const BATCH_ROOMS_CEILING = 10_000;

const HOST = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/;

/** BATCH_MAX_ROOMS, BATCH_MAX_PENDING_ROOMS_PER_CLIENT, BATCH_TTL_S, BATCH_CONCURRENCY, BATCH_BODY_LIMIT_BYTES, BATCH_CALLBACK_HOSTS, BATCH_CALLBACK_SECRET. */
export function readBatchSettings(read: EnvReader): BatchSettings {
  const maxRooms = read.int('BATCH_MAX_ROOMS', { default: 1000, min: 1, max: BATCH_ROOMS_CEILING });
  const maxPendingRoomsPerClient = read.int('BATCH_MAX_PENDING_ROOMS_PER_CLIENT', { default: 10_000, min: 1, max: 10_000_000 });
  if (maxPendingRoomsPerClient < maxRooms) {
    read.problem('BATCH_MAX_PENDING_ROOMS_PER_CLIENT', 'must be at least BATCH_MAX_ROOMS (a full batch must fit)');
  }
  const callbackHosts = (read.optional('BATCH_CALLBACK_HOSTS') ?? '')
    .split(',')
    .map((host) => host.trim().toLowerCase())
    .filter((host) => host !== '');
  const badHost = callbackHosts.find((host) => !HOST.test(host));
  if (badHost !== undefined) {
    read.problem('BATCH_CALLBACK_HOSTS', 'must be a comma-separated list of host names or host:port (no scheme, no path)');
  }
  const secret = read.optional('BATCH_CALLBACK_SECRET') ?? read.optional('BATCH_CALLBACK_SECRET_FILE');
  const callbackSecret = secret === undefined ? undefined : read.inlineOrFile('BATCH_CALLBACK_SECRET', 'BATCH_CALLBACK_SECRET_FILE');
  if (callbackHosts.length > 0 && secret === undefined) {
    read.problem('BATCH_CALLBACK_SECRET', 'is required when BATCH_CALLBACK_HOSTS lists hosts (callbacks are signed with it)');
  }
  if (callbackSecret !== undefined && callbackSecret.value.length < 16) {
    read.problem('BATCH_CALLBACK_SECRET', 'must be at least 16 characters');
  }
  return {
    maxRooms,
    maxPendingRoomsPerClient,
    ttlSeconds: read.int('BATCH_TTL_S', { default: 604_800, min: 60, max: 31_536_000 }),
    concurrency: read.int('BATCH_CONCURRENCY', { default: 8, min: 1, max: 200 }),
    bodyLimitBytes: read.int('BATCH_BODY_LIMIT_BYTES', { default: 4 * 1024 * 1024, min: 64 * 1024, max: 64 * 1024 * 1024 }),
    callbackHosts,
    ...(callbackSecret !== undefined && { callbackSecret: new Secret(callbackSecret.value) }),
  };
}
