/** Jest global setup: the whole-suite secret scan and the leftover-children safety net. */
import { leftoverChildrenSetup } from './leftover-children.global.js';
import secretScanGlobalSetup from './secret-scan.global-setup.js';

export default function globalSetup() {
  secretScanGlobalSetup();
  leftoverChildrenSetup();
}
