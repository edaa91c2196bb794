import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway certificate authority and a server certificate it signed for 127.0.0.1 and
 * localhost, made with Debian's `openssl` (scripts/install-system-deps.sh) at test time: no key is
 * ever committed. P-256 keys, a two-day validity (the run's clock, not asserted on).
 */
export interface TestCerts {
  readonly dir: string;
  /** PEM files on disk (what the processes' *_FILE variables name). */
  readonly files: { readonly ca: string; readonly cert: string; readonly key: string; readonly otherCa: string };
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** A CA that signed nothing here: a client trusting only it must refuse the server. */
  readonly otherCa: Buffer;
  remove(): Promise<void>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'carewatch-tls-'));
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ca = (name: string): void => run(['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=carewatch ${name}`, '-days', '2']);
  ca('test-ca');
  ca('other-ca');
  run(['req', ...EC, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  await writeFile(
    join(dir, 'server.ext'),
    ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', ''].join('\n'),
  );
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'test-ca.crt', '-CAkey', 'test-ca.key', '-set_serial', '1', '-days', '2', '-extfile', 'server.ext', '-out', 'server.crt']);
  const files = { ca: join(dir, 'test-ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), otherCa: join(dir, 'other-ca.crt') };
  return {
    dir,
    files,
    ca: await readFile(files.ca),
    cert: await readFile(files.cert),
    key: await readFile(files.key),
    otherCa: await readFile(files.otherCa),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
