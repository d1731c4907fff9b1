/**
 * GET /docs in a real browser: the built gateway serves the page, headless Chromium (Debian's,
 * through playwright-core) runs Swagger UI's scripts on the document its init script carries, and
 * the UI lists the client API: POST /rooms and the batch routes. A screenshot of the page is saved under the
 * test's temporary directory. The page loads nothing from anywhere but the gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { launchHeadlessChromium, type HeadlessChromium } from './support/headless-chromium.js';
import { scenario } from './support/scenario.js';

const s = scenario({
  fakeZim: { appId: 1732050807, serverSecret: 'SENTINEL-secret-docs-browser-5e1b' },
  apiKeys: { 'svc-docs': 'sk-SENTINEL-docs-browser-3a9c' },
});
const gateway = s.gatewayBeforeAll();

/** Every operation the client API has, as Swagger UI shows it: method and path template. */
const OPERATIONS = ['POST /rooms', 'POST /rooms/batches', 'GET /rooms/batches/{batchId}', 'DELETE /rooms/batches/{batchId}'];
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let chromium: HeadlessChromium;
let dir: string;
let page: Page;
const requested: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'docs-browser-'));
  chromium = await launchHeadlessChromium();
  page = await chromium.context.newPage();
  page.on('request', (request) => requested.push(request.url()));
  page.on('pageerror', (error) => pageErrors.push(error.message));
}, 60_000);

afterAll(async () => {
  await chromium?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The operations the UI lists, as `METHOD /path`. */
function listedOperations(): Promise<string[]> {
  return page.$$eval('.opblock', (blocks) =>
    blocks.map((block) => {
      const method = block.querySelector('.opblock-summary-method')?.textContent?.trim() ?? '';
      const route = block.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '';
      return `${method} ${route}`;
    }),
  );
}

describe('GET /docs in headless Chromium', () => {
  it('lists POST /rooms and the batch routes once Swagger UI has rendered the document', async () => {
    const response = await page.goto(`${gateway.url}/docs`, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    // Rendered by the UI's scripts: the operations are not in the page's HTML.
    await page.locator('.opblock-post .opblock-summary-path[data-path="/rooms"]').waitFor({ state: 'visible', timeout: 20_000 });
    await page.locator('.opblock-delete .opblock-summary-path[data-path="/rooms/batches/{batchId}"]').waitFor({ state: 'visible', timeout: 20_000 });
    expect((await listedOperations()).sort()).toEqual([...OPERATIONS].sort());
    expect(await page.title()).toBe('zim-room-gateway API');
    expect(pageErrors).toEqual([]);
  });

  it('loads nothing from outside the gateway', () => {
    expect(requested).toContain(`${gateway.url}/docs/swagger-ui-init.js`);
    expect(requested.filter((url) => !url.startsWith(`${gateway.url}/`) && !url.startsWith('data:'))).toEqual([]);
  });

  it("saves a screenshot of the page under the test's temporary directory", async () => {
    const file = path.join(dir, 'docs.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(existsSync(file)).toBe(true);
    const png = readFileSync(file);
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    // IHDR, the first chunk: width and height, big-endian, after the signature, length and type.
    const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
    expect(width).toBeGreaterThanOrEqual(800);
    expect(height).toBeGreaterThanOrEqual(600);
    // A rendered page of operations, not a blank one (which compresses to a few kilobytes).
    expect(png.length).toBeGreaterThan(30_000);
  });
});
