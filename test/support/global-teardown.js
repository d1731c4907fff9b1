/**
 * Jest global teardown: first stops any child a dead worker left running (so nothing writes to
 * the emissions any more), then runs the whole-suite secret scan, which fails the run on a leak.
 */
import { leftoverChildrenTeardown } from './leftover-children.global.js';
import secretScanGlobalTeardown from './secret-scan.global-teardown.js';

export default async function globalTeardown() {
  leftoverChildrenTeardown();
  await secretScanGlobalTeardown();
}
