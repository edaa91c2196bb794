import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testInflux } from '../support/influx-db.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { tempDir } from './support/harness.ts';
import { processArgv } from '../support/process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function runMain(env: Record<string, string>, onLine?: (line: string, kill: () => void) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, processArgv('alerts/main.ts'), { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      for (const line of d.toString().split('\n')) onLine?.(line, () => child.kill('SIGTERM'));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let broker: TestBroker;
let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  broker = await startTestBroker();
  dir = await tempDir();
});
afterAll(async () => {
  await broker.close();
  await dir.remove();
});

describe('alerts/main.ts', () => {
  it('stops with exit 1 and names the variable on bad configuration', async () => {
    const r = await runMain({ CAREWATCH_HTTP_PORT: 'eighty' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CAREWATCH_HTTP_PORT');
  });

  it('requires a token secret in production mode', async () => {
    const r = await runMain({ NODE_ENV: 'production' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CAREWATCH_TOKEN_SECRET');
  });

  it('refuses a demo token secret and the demo broker password in production mode', async () => {
    const r = await runMain({ NODE_ENV: 'production', CAREWATCH_TOKEN_SECRET: 'demo-0123456789012345678901234567890123' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CAREWATCH_TOKEN_SECRET is a demo secret');
    expect(r.stderr).toContain('CAREWATCH_ALERTS_PASSWORD'); // the default demo-svc-alerts
    expect(r.stderr).not.toContain('demo-0123456789'); // the secret itself is never echoed
    const p = await runMain({ NODE_ENV: 'production', CAREWATCH_TOKEN_SECRET: 'x'.repeat(40), CAREWATCH_ALERTS_PASSWORD: 'demo-svc-alerts' });
    expect(p.code).toBe(1);
    expect(p.stderr).toContain('CAREWATCH_ALERTS_PASSWORD is a demo secret');
    expect(p.stderr).not.toContain('CAREWATCH_TOKEN_SECRET');
  });

  it('serves HTTP with a degraded /health when the broker is unreachable, instead of hanging in start', async () => {
    const influx = testInflux('alerts_main_nobroker');
    let health: { status: number; body: { status: string; problems: string[] } } | undefined;
    let asked = false;
    const r = await runMain(
      {
        CAREWATCH_MQTT_URL: 'mqtt://127.0.0.1:1',
        CAREWATCH_INFLUX_URL: influx.url,
        CAREWATCH_INFLUX_DB: influx.database,
        CAREWATCH_HTTP_PORT: '0',
        CAREWATCH_STATE_DIR: dir.path,
      },
      (line, kill) => {
        if (asked || !line.includes('"msg":"alerts started"')) return;
        asked = true;
        const port = (JSON.parse(line) as { port: number }).port;
        void fetch(`http://127.0.0.1:${port}/health`)
          .then(async (res) => (health = { status: res.status, body: (await res.json()) as { status: string; problems: string[] } }))
          .finally(kill);
      },
    );
    expect(r.stdout).toContain('ALERTS_MQTT_UNREACHABLE');
    expect(health).toMatchObject({ status: 503, body: { status: 'degraded', problems: ['ALERTS_MQTT_DISCONNECTED'] } });
    expect(r.code).toBe(0);
  }, 30_000);

  it('starts with the real rules and exits 0 on SIGTERM', async () => {
    const influx = testInflux('alerts_main');
    let started = false;
    const r = await runMain(
      {
        CAREWATCH_MQTT_URL: broker.url,
        CAREWATCH_INFLUX_URL: influx.url,
        CAREWATCH_INFLUX_DB: influx.database,
        CAREWATCH_HTTP_PORT: '0',
        CAREWATCH_STATE_DIR: dir.path,
      },
      (line, kill) => {
        if (!started && line.includes('"msg":"alerts started"')) {
          started = true;
          kill();
        }
      },
    );
    expect(started).toBe(true);
    expect(r.code).toBe(0);
  });
});
