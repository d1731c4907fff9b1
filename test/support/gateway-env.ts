/**
 * The environment every gateway under test starts from: the vendor's AppId, ServerSecret and URL,
 * and API_KEYS (as digests; the keys themselves are for the requests). Specs and the fleet add
 * their own variables on top.
 */
import { apiKeysValue } from './api-keys.js';

/** Variables on top of the base. One set to undefined is left out (API_KEYS when a test mounts API_KEYS_FILE). */
export type EnvLayer = Record<string, string | undefined>;

export interface GatewayBase {
  appId: number;
  secret: string;
  /** ZEGO_API_BASE_URL: the fake vendor's URL. */
  vendorUrl: string;
  /** client id → API key */
  apiKeys: Record<string, string>;
}

/** The base variables, then each layer in turn: the last layer to set a variable wins. */
export function gatewayEnv(base: GatewayBase, ...layers: Array<EnvLayer | undefined>): Record<string, string> {
  const merged: EnvLayer = Object.assign(
    {
      ZEGO_APP_ID: String(base.appId),
      ZEGO_SERVER_SECRET: base.secret,
      ZEGO_API_BASE_URL: base.vendorUrl,
      API_KEYS: apiKeysValue(base.apiKeys),
    },
    ...layers,
  );
  return Object.fromEntries(
    Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}
