/**
 * The self-signed test certificate (test-certificate.ts): trusted for 127.0.0.1 and localhost by a
 * client given it as its CA, and by a client process through NODE_EXTRA_CA_CERTS, as a gateway
 * would trust an HTTPS fake vendor; refused by a client that was not told about it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, get, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestCertificate, type TestCertificate } from './test-certificate.js';

let certificate: TestCertificate;
let server: Server;
let port: number;

beforeAll(async () => {
  certificate = await createTestCertificate();
  server = createServer({ cert: certificate.certPem, key: certificate.keyPem }, (_req, res) => res.end('trusted'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await certificate.remove();
});

function fetchText(url: string, ca?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { ca, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

/** A node process that GETs `url` with node:https and prints the body, or exits 2 with the error. */
function fetchInChildProcess(url: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  const script = [
    `require('node:https').get(${JSON.stringify(url)}, (r) => r.setEncoding('utf8').on('data', (d) => process.stdout.write(d)))`,
    `  .on('error', (e) => { process.stderr.write(e.message); process.exit(2); });`,
  ].join('\n');
  const options = { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 15_000 };
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', script], options, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('createTestCertificate', () => {
  it('writes the certificate and key it returns', () => {
    expect(existsSync(certificate.certPath)).toBe(true);
    expect(existsSync(certificate.keyPath)).toBe(true);
    expect(certificate.certPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(certificate.keyPem).toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  });

  it('is trusted for 127.0.0.1 and localhost by a client given it, and refused by one that is not', async () => {
    expect(await fetchText(`https://127.0.0.1:${port}/`, certificate.certPem)).toBe('trusted');
    expect(await fetchText(`https://localhost:${port}/`, certificate.certPem)).toBe('trusted');
    await expect(fetchText(`https://127.0.0.1:${port}/`)).rejects.toThrow(/self-signed|certificate/i);
  });

  it('is trusted by a client process through NODE_EXTRA_CA_CERTS', async () => {
    const url = `https://127.0.0.1:${port}/`;
    const trusted = await fetchInChildProcess(url, { NODE_EXTRA_CA_CERTS: certificate.certPath });
    expect(trusted).toEqual({ code: 0, output: 'trusted' });
    const untrusted = await fetchInChildProcess(url, {});
    expect(untrusted.code).toBe(2);
    expect(untrusted.output).toMatch(/self-signed|certificate/i);
  });

  it('remove() deletes its directory', async () => {
    const other = await createTestCertificate();
    expect(existsSync(other.dir)).toBe(true);
    await other.remove();
    expect(existsSync(other.dir)).toBe(false);
  });
});
