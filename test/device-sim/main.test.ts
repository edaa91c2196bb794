import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAedes, type TestBroker } from './support/aedes.ts';
import { processArgv } from '../support/process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let broker: TestBroker;

function runMain(env: Record<string, string>, onStdout?: (text: string, kill: () => void) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, processArgv('device-sim/main.ts'), { cwd: ROOT, env: { PATH: process.env.PATH ?? '', CAREWATCH_LOG_LEVEL: 'silent', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, () => child.kill('SIGTERM'));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  broker = await startAedes();
});
afterAll(async () => {
  await broker?.close();
});

describe('device-sim/main.ts', () => {
  it('refuses bad configuration naming the variable, exit 1', async () => {
    const [speed, homes] = await Promise.all([runMain({ CAREWATCH_SIM_SPEED: 'fast' }), runMain({ CAREWATCH_SIM_HOMES: 'h01,h99' })]);
    expect(speed.code).toBe(1);
    expect(speed.stderr).toContain('CAREWATCH_SIM_SPEED');
    expect(homes.code).toBe(1);
    expect(homes.stderr).toContain('CAREWATCH_SIM_HOMES');
    expect(homes.stderr).toContain('h99');
  });

  it('connects the selected homes and exits 0 on SIGTERM', async () => {
    let killed = false;
    const r = await runMain({ CAREWATCH_MQTT_URL: broker.url, CAREWATCH_SIM_HOMES: 'h03', CAREWATCH_SIM_CONTROL_PORT: '0' }, (out, kill) => {
      if (!killed && out.includes('devices connected')) {
        killed = true;
        kill();
      }
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/device-sim: \d+ devices connected/);
    expect([...broker.logins.keys()].some((u) => u.startsWith('h03-'))).toBe(true);
  });
});
