import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { haproxyConfig } from '../support/haproxy.ts';
import { ROOT } from '../support/process.ts';

const run = promisify(execFile);

/** docs/scaling.md shows the HAProxy configuration the cluster test runs: the two must not drift apart. */
it('docs/scaling.md shows the HAProxy configuration of test/support/haproxy.ts, and HAProxy accepts it', async () => {
  const text = haproxyConfig(1883, [
    { name: 'a', port: 18831 },
    { name: 'b', port: 18832 },
  ]);
  const docs = await readFile(join(ROOT, 'docs', 'scaling.md'), 'utf8');
  expect(docs).toContain(`\`\`\`\n${text}\`\`\``);
  const dir = await mkdtemp(join(tmpdir(), 'carewatch-haproxy-cfg-'));
  try {
    await writeFile(join(dir, 'haproxy.cfg'), text);
    const { stdout, stderr } = await run('/usr/sbin/haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')]);
    expect(`${stdout}${stderr}`).toMatch(/Configuration file is valid/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
