import { describe, expect, it } from 'vitest';
import { startProcess } from '../support/process.ts';

/**
 * Every process, started on its own exactly as in production, refuses a bad or missing setting
 * with a message that names the variable and what it expects, and exits 1 without serving.
 */
const CASES = [
  { name: 'broker', entry: 'broker/main.ts', env: { CAREWATCH_BROKER_PORT: 'eighteen' }, variable: 'CAREWATCH_BROKER_PORT' },
  { name: 'ingest', entry: 'ingest/main.ts', env: {}, variable: 'CAREWATCH_INGEST_PASSWORD' },
  { name: 'alerts', entry: 'alerts/main.ts', env: { CAREWATCH_INFLUX_URL: 'influx.local:8086' }, variable: 'CAREWATCH_INFLUX_URL' },
  { name: 'device-sim', entry: 'device-sim/main.ts', env: { CAREWATCH_SIM_SPEED: '-3' }, variable: 'CAREWATCH_SIM_SPEED' },
  { name: 'broker (registry)', entry: 'broker/main.ts', env: { CAREWATCH_REGISTRY: '/nonexistent/site.json' }, variable: 'CAREWATCH_REGISTRY' },
] as const;

describe('process configuration', () => {
  for (const c of CASES) {
    it(`${c.name} stops with a message naming ${c.variable}`, async () => {
      const p = startProcess(c.name, c.entry, { ...c.env });
      const code = await new Promise<number | null>((resolve) => p.child.once('exit', (code) => resolve(code)));
      expect(code).toBe(1);
      expect(p.output()).toContain(c.variable);
    });
  }

  it('the alerts process refuses to start in production mode without a token secret', async () => {
    const p = startProcess('alerts-prod', 'alerts/main.ts', { NODE_ENV: 'production' });
    const code = await new Promise<number | null>((resolve) => p.child.once('exit', (code) => resolve(code)));
    expect(code).toBe(1);
    expect(p.output()).toContain('CAREWATCH_TOKEN_SECRET');
  });

  it('a process started on its own serves, then closes cleanly on SIGTERM with exit code 0', async () => {
    const p = startProcess('broker-sigterm', 'broker/main.ts', { CAREWATCH_BROKER_PORT: '0', CAREWATCH_BROKER_WS_PORT: '0' });
    const [, port] = (await p.waitForOutput(/broker listening mqtt:\/\/127\.0\.0\.1:(\d+)/)) as unknown as [string, string];
    expect(Number(port)).toBeGreaterThan(0);
    expect(await p.stop()).toBe(0);
  });
});
