/**
 * Jest global setup of the whole-suite secret scan (pairs with secret-scan.global-teardown.js).
 * Plain ES module JavaScript: jest runs global setup files in its own process, outside the
 * ts-jest ESM transform the specs get.
 *
 * Creates a fresh directory and names it in ZIM_GW_EMISSIONS_DIR before the test workers start
 * (they inherit the environment). test/support/secret-scan.ts's recordEmission then appends there
 * everything each gateway (or fake vendor) child writes and every response an HttpRecorder or
 * fleet's createRoom() received. The teardown scans those files for the sentinel secrets and keys.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const EMISSIONS_DIR_VARIABLE = 'ZIM_GW_EMISSIONS_DIR';

export default function secretScanGlobalSetup() {
  process.env[EMISSIONS_DIR_VARIABLE] = mkdtempSync(path.join(tmpdir(), 'zim-gw-emissions-'));
}
