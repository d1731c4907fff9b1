import type { EnvReader } from '../config/env-reader.js';
import { Secret } from '../config/secret.js';
import { ZIM_LIMITS } from './zim-limits.js';

export interface ZegoSettings {
  readonly appId: number;
  readonly serverSecret: Secret;
  /** Where the secret was read from, when it came from a file (for rotation). */
  readonly serverSecretFile?: string;
  readonly apiBaseUrl: string;
  readonly timeoutMs: number;
  /** Total time one vendor call may take, retries and limiter waits included. */
  readonly callDeadlineMs: number;
  readonly maxAttempts: number;
  /** A vendor connection idle this long is closed by the gateway, below the vendor's own keep-alive. */
  readonly keepAliveIdleMs: number;
  /** Vendor connections are opened ahead of the calls that need them (false: on a call's path). */
  readonly warmConnections: boolean;
  readonly defaultFromUserId?: string;
  readonly maxRoomAttributes: number;
}

const DEFAULT_API_BASE_URL = 'https://zim-api.zego.im';
const UINT32_MAX = 4_294_967_295;

/** The ZEGO_* variables: the vendor account, where and how to call it, the vendor's own limits. */
export function readZegoSettings(read: EnvReader): ZegoSettings {
  const appId = read.int('ZEGO_APP_ID', { min: 1, max: UINT32_MAX });
  const secret = read.inlineOrFile('ZEGO_SERVER_SECRET', 'ZEGO_SERVER_SECRET_FILE');
  const apiBaseUrl = readBaseUrl(read);
  const timeoutMs = read.int('ZEGO_TIMEOUT_MS', { default: 5000, min: 100, max: 120_000 });
  const callDeadlineMs = read.int('ZEGO_CALL_DEADLINE_MS', { default: 10_000, min: 100, max: 300_000 });
  if (callDeadlineMs < timeoutMs) {
    read.problem('ZEGO_CALL_DEADLINE_MS', 'must be at least ZEGO_TIMEOUT_MS');
  }
  const maxAttempts = read.int('ZEGO_MAX_ATTEMPTS', { default: 3, min: 1, max: 10 });
  const keepAliveIdleMs = read.int('ZEGO_KEEPALIVE_IDLE_MS', { default: 4000, min: 100, max: 600_000 });
  const warmConnections = read.bool('ZEGO_WARM_CONNECTIONS', true);
  const defaultFromUserId = read.optional('ZEGO_DEFAULT_FROM_USER_ID');
  if (defaultFromUserId !== undefined && !ZIM_LIMITS.idPattern.test(defaultFromUserId)) {
    read.problem('ZEGO_DEFAULT_FROM_USER_ID', `must be ${ZIM_LIMITS.idAllowedDescription}`);
  }
  const maxRoomAttributes = read.int('ZEGO_MAX_ROOM_ATTRIBUTES', {
    default: ZIM_LIMITS.defaultMaxAttributes,
    min: 0,
    max: 1000,
  });
  return {
    appId,
    // Without a secret the reader has recorded the problem and loading stops before use.
    serverSecret: new Secret(secret?.value ?? ''),
    serverSecretFile: secret?.file,
    apiBaseUrl,
    timeoutMs,
    callDeadlineMs,
    maxAttempts,
    keepAliveIdleMs,
    warmConnections,
    defaultFromUserId,
    maxRoomAttributes,
  };
}

function readBaseUrl(read: EnvReader): string {
  const raw = read.optional('ZEGO_API_BASE_URL') ?? DEFAULT_API_BASE_URL;
  if (!isUrlWithProtocol(raw, ['http:', 'https:'])) {
    read.problem('ZEGO_API_BASE_URL', 'must be an http:// or https:// URL');
    return raw;
  }
  const url = new URL(raw);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    read.problem('ZEGO_API_BASE_URL', 'must not carry a query, fragment or credentials');
  }
  return url.toString();
}

function isUrlWithProtocol(raw: string, protocols: string[]): boolean {
  try {
    return protocols.includes(new URL(raw).protocol);
  } catch {
    return false;
  }
}
