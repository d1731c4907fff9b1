/**
 * A self-signed certificate for 127.0.0.1 and localhost, made at test time with the `openssl`
 * binary into a fresh temporary directory, for an HTTPS fake vendor:
 *
 *   const certificate = await createTestCertificate();
 *   const fake = new FakeZimServer({ ..., tls: { cert: certificate.certPem, key: certificate.keyPem } });
 *   https.request(url, { ca: certificate.certPem });                  // a client in this process
 *   startGateway({ ..., NODE_EXTRA_CA_CERTS: certificate.certPath });  // a client process
 *   await certificate.remove();
 *
 * An EC P-256 key: quick to make and to handshake with. Valid for one day.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCertificate {
  /** The temporary directory holding both files. */
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Deletes the directory. */
  remove(): Promise<void>;
}

function runOpenssl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new Error(
          missing
            ? 'the openssl binary is not on PATH: it is needed to make a test certificate'
            : `openssl ${args[0]} failed: ${error.message}\n${stderr}`,
        ),
      );
    });
  });
}

export async function createTestCertificate(): Promise<TestCertificate> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zim-gw-test-cert-'));
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await runOpenssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { dir, certPath, keyPath, certPem, keyPem, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
