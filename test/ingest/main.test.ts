import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { processArgv } from '../support/process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAREWATCH_')));
    const child = spawn(process.execPath, processArgv('ingest/main.ts'), { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('ingest main', () => {
  it('refuses to start without a password, naming the variable', async () => {
    const r = await run({});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CAREWATCH_INGEST_PASSWORD is missing');
  });

  it('refuses a malformed value, naming the variable and what it expects', async () => {
    const r = await run({ CAREWATCH_INGEST_PASSWORD: 'x', CAREWATCH_SPOOL_MAX_BYTES: 'lots', CAREWATCH_MQTT_URL: 'http://nope' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CAREWATCH_SPOOL_MAX_BYTES="lots" is invalid');
    expect(r.stderr).toContain('CAREWATCH_MQTT_URL="http://nope" is invalid: expected MQTT broker URL');
  });

  it('refuses an unreadable registry, naming CAREWATCH_REGISTRY', async () => {
    const r = await run({ CAREWATCH_INGEST_PASSWORD: 'x', CAREWATCH_REGISTRY: '/nonexistent/site.json' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CAREWATCH_REGISTRY');
  });
});
