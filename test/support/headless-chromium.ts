/**
 * Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing), headless,
 * driven by playwright-core: no browser download, the one the machine has. Every launch gets a
 * fresh profile in a temporary directory, removed at close, so no state carries from one test to
 * the next, and the browser is kept from calling home (updates, sync, field trials).
 *
 *   const chromium = await launchHeadlessChromium();
 *   const page = await chromium.context.newPage();
 *   ...
 *   await chromium.close();
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  // As root in a container there is no user namespace for Chromium's sandbox.
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export interface HeadlessChromium {
  readonly context: BrowserContext;
  /** The fresh profile (`--user-data-dir`) this browser runs with. */
  readonly userDataDir: string;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

export async function launchHeadlessChromium(options: { timeoutMs?: number } = {}): Promise<HeadlessChromium> {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'chromium-profile-'));
  let context: BrowserContext;
  try {
    // Playwright passes the profile as --user-data-dir itself (and refuses it among the args).
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: options.timeoutMs ?? 30_000,
    });
  } catch (error) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    userDataDir,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
