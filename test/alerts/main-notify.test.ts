import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifyProductionProblems } from '../../alerts/config.ts';
import { createChannelHealth } from '../../alerts/notify/channel-health.ts';
import { parseNotifyConfig, type NotifyConfig } from '../../alerts/notify/config.ts';
import { testInflux } from '../support/influx-db.ts';
import { tempDir } from './support/harness.ts';
import { processArgv } from '../support/process.ts';

/**
 * Issue 15, audit gap 3: production refuses a notification setup that would reach nobody, leak
 * residents' names in clear or point at the demo — checked on the real process (alerts/main.ts), as
 * an operator starts it, each refusal with its stable code; the demo config still starts in
 * development. Then the pure rules behind it, and the channel-health tally behind /health.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROD = { NODE_ENV: 'production', CAREWATCH_TOKEN_SECRET: 'p'.repeat(40), CAREWATCH_ALERTS_PASSWORD: 'a-real-broker-password' };
const influx = testInflux('alerts_main_notify');

/** Runs alerts/main.ts to its exit; once it has started it is stopped with SIGTERM (a refusal never gets there). */
function runMain(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; started: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, processArgv('alerts/main.ts'), {
      cwd: ROOT,
      // An unreachable broker: alerts serves with a degraded /health rather than waiting (main.test.ts).
      env: { PATH: process.env.PATH ?? '', CAREWATCH_MQTT_URL: 'mqtt://127.0.0.1:1', CAREWATCH_INFLUX_URL: influx.url, CAREWATCH_INFLUX_DB: influx.database, CAREWATCH_HTTP_PORT: '0', CAREWATCH_STATE_DIR: dir.path, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let started = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!started && stdout.includes('"msg":"alerts started"')) {
        started = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr, started }));
  });
}

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir('main-notify-');
});
afterAll(async () => {
  await dir.remove();
});

/** A production-worthy config: https everywhere, real-looking hosts, secrets of the site's own. */
function goodConfig(): NotifyConfig {
  return parseNotifyConfig({
    baseUrl: 'https://carewatch.minzheng.gov.cn',
    channels: [
      { id: 'duty-wecom', type: 'wecom', url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=7f1c2a9e-4b1d-4c55-9a0e-3d2b1f0e9c11', homes: ['h01'] },
      { id: 'sms', type: 'sms', url: 'https://sms.minzheng.gov.cn/send', headers: { authorization: 'Bearer 8d6c0b5e1f4a' }, bodyTemplate: '{"to":"{{to}}","content":"{{text}}"}' },
      { id: 'bureau-hook', type: 'webhook', url: 'https://duty.minzheng.gov.cn/carewatch', secret: 'k3J9x2LqP0vW8sT5' },
    ],
    routes: [
      { severities: ['critical', 'high'], level: 0, channels: ['duty-wecom', 'sms'] },
      { severities: ['critical'], level: 2, channels: ['bureau-hook'] },
    ],
  });
}

async function configFile(name: string, config: unknown): Promise<string> {
  const path = join(dir.path, name);
  await writeFile(path, JSON.stringify(config));
  return path;
}

describe('alerts/main.ts in production mode: the notify config', () => {
  it('refuses to start without CAREWATCH_NOTIFY_CONFIG (ALERTS_NOTIFY_CONFIG_MISSING)', async () => {
    const r = await runMain(PROD);
    expect(r.code).toBe(1);
    expect(r.started).toBe(false);
    expect(r.stderr).toContain('ALERTS_NOTIFY_CONFIG_MISSING');
    expect(r.stderr).toContain('CAREWATCH_NOTIFY_CONFIG');
  });

  it('refuses the demo config: demo secrets, plain http:// and a loopback page link, each by code and channel, never echoing a secret', async () => {
    const r = await runMain({ ...PROD, CAREWATCH_NOTIFY_CONFIG: 'config/notify-demo.json' });
    expect(r.code).toBe(1);
    expect(r.started).toBe(false);
    for (const line of [
      'ALERTS_NOTIFY_DEMO_SECRET: notify channel duty-wecom-h01 url has a demo secret in its query parameter key',
      'ALERTS_NOTIFY_DEMO_SECRET: notify channel duty-wecom-pv02 url has a demo secret in its query parameter key',
      'ALERTS_NOTIFY_DEMO_SECRET: notify channel sms header authorization carries a demo secret',
      'ALERTS_NOTIFY_DEMO_SECRET: notify channel mgmt-dingtalk-h09 secret is a demo secret',
      'ALERTS_NOTIFY_DEMO_SECRET: notify channel bureau-hook secret is a demo secret',
      'ALERTS_NOTIFY_INSECURE_URL: notify channel bureau-hook url is plain http://',
      'ALERTS_NOTIFY_DEMO_URL: notify config baseUrl is a demo, example or loopback address (127.0.0.1)',
    ])
      expect(r.stderr).toContain(line);
    for (const secret of ['demo-SEC-dingtalk-0123456789', 'demo-webhook-secret-0123456789', 'demo-sms-token', 'demo-duty-wecom']) expect(r.stderr).not.toContain(secret);
  }, 60_000);

  it('refuses the example addresses of the docs and a plain-http gateway; allows a loopback gateway only when told to; starts with a clean config', async () => {
    const good = goodConfig();
    const example = await configFile('example.json', { ...good, baseUrl: 'https://carewatch.example.cn' });
    const r1 = await runMain({ ...PROD, CAREWATCH_NOTIFY_CONFIG: example });
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('ALERTS_NOTIFY_DEMO_URL: notify config baseUrl');

    const loopback = await configFile('loopback.json', { ...good, channels: good.channels.map((c) => (c.id === 'sms' ? { ...c, url: 'http://127.0.0.1:9000/send' } : c)) });
    const r2 = await runMain({ ...PROD, CAREWATCH_NOTIFY_CONFIG: loopback });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('ALERTS_NOTIFY_INSECURE_URL: notify channel sms url is plain http:// (127.0.0.1:9000): use https://, or set CAREWATCH_NOTIFY_ALLOW_LOOPBACK_HTTP=true');
    const r3 = await runMain({ ...PROD, CAREWATCH_NOTIFY_CONFIG: loopback, CAREWATCH_NOTIFY_ALLOW_LOOPBACK_HTTP: 'true' });
    expect(r3.stderr).toBe('');
    expect(r3.started).toBe(true);
    expect(r3.code).toBe(0);
  }, 120_000);

  it('the demo config still starts in development', async () => {
    const r = await runMain({ CAREWATCH_NOTIFY_CONFIG: 'config/notify-demo.json' });
    expect(r.started).toBe(true);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('"msg":"notifier started"');
  }, 60_000);
});

describe('notifyProductionProblems (pure)', () => {
  it('a clean config has no problem; each fault is named once with its code', () => {
    const good = goodConfig();
    expect(notifyProductionProblems(good, { allowLoopbackHttp: false })).toEqual([]);
    const codes = (c: NotifyConfig, allow = false) => notifyProductionProblems(c, { allowLoopbackHttp: allow }).map((p) => p.slice(0, p.indexOf(':')));
    const withChannel = (url: string): NotifyConfig => ({ ...good, channels: good.channels.map((c) => (c.id === 'bureau-hook' ? { ...c, url } : c)) });
    expect(codes(withChannel('http://duty.minzheng.gov.cn/carewatch'))).toEqual(['ALERTS_NOTIFY_INSECURE_URL']);
    // Loopback over http only with the flag; a public host never.
    expect(codes(withChannel('http://[::1]:9000/hook'))).toEqual(['ALERTS_NOTIFY_INSECURE_URL']);
    expect(codes(withChannel('http://[::1]:9000/hook'), true)).toEqual([]);
    expect(codes(withChannel('http://localhost:9000/hook'), true)).toEqual([]);
    expect(codes(withChannel('http://10.0.0.5/hook'), true)).toEqual(['ALERTS_NOTIFY_INSECURE_URL']);
    // The docs' and RFC 2606 example hosts, the compose demo receiver, the docs' "…" placeholder.
    for (const url of ['https://bureau.example.cn/carewatch', 'https://example.com/x', 'https://hook.test/x', 'http://notify-sink:8070/webhook/bureau', 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…'])
      expect(codes(withChannel(url)), url).toContain('ALERTS_NOTIFY_DEMO_URL');
    expect(codes({ ...good, baseUrl: 'http://carewatch.minzheng.gov.cn' })).toEqual(['ALERTS_NOTIFY_INSECURE_URL']);
    expect(codes({ ...good, baseUrl: 'https://localhost:8080' })).toEqual(['ALERTS_NOTIFY_DEMO_URL']);
    expect(codes({ ...good, channels: good.channels.map((c) => (c.type === 'sms' ? { ...c, bodyTemplate: '{"key":"demo-sms","to":"{{to}}"}' } : c)) })).toEqual(['ALERTS_NOTIFY_DEMO_SECRET']);
    expect(codes(undefined as unknown as NotifyConfig)).toEqual(['ALERTS_NOTIFY_CONFIG_MISSING']);
  });
});

describe('channel health (pure)', () => {
  it('failing only after N consecutive failed attempts lasting the window; a delivery clears it; the last error is kept', () => {
    const h = createChannelHealth({ failures: 3, forMs: 60_000 });
    h.note('wecom', false, 0, 'HTTP 500');
    h.note('wecom', false, 10_000, 'HTTP 502');
    expect(h.failing(120_000)).toEqual([]); // two failures only
    h.note('wecom', false, 20_000, 'timeout after 10000 ms');
    expect(h.failing(59_999)).toEqual([]); // three, but not for a minute yet
    expect(h.failing(60_000)).toEqual([{ channel: 'wecom', consecutiveFailures: 3, failingSince: 0, lastAttemptAt: 20_000, lastError: 'timeout after 10000 ms' }]);
    h.note('sms', true, 30_000);
    expect(h.failing(90_000).map((c) => c.channel)).toEqual(['wecom']);
    h.note('wecom', true, 90_000);
    expect(h.failing(200_000)).toEqual([]);
    // A success in between restarts the run.
    h.note('wecom', false, 300_000);
    h.note('wecom', false, 310_000);
    h.note('wecom', true, 320_000);
    h.note('wecom', false, 330_000);
    expect(h.failing(1_000_000)).toEqual([]);
  });
});
