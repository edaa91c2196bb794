import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { io as connectClient } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_REDACT } from '../../common/logger.ts';
import { freePort } from '../../common/influxd.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { testInflux } from '../support/influx-db.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { DEMO_SITE_PATH } from '../support/registry.ts';

/**
 * Issue 12 "Security": no secret, password or token appears in any log line of a full run. Broker,
 * ingest and alerts run as child processes from their main.ts at debug level, their stdout and
 * stderr captured; the test logs in with right and wrong passwords (and bodies that break), connects
 * devices and services with right and wrong secrets, opens socket.io sessions with good and forged
 * tokens and calls the API with them; then every log line of every process is searched for each
 * password, device secret, service secret, token (whole and its signature) and the token HMAC key.
 */
const rand = (): string => randomBytes(9).toString('base64url');
const TOKEN_KEY = `hmac-key-${rand()}-${rand()}-${rand()}`;
const SECRETS = {
  tokenKey: TOKEN_KEY,
  staffPassword: 'demo-staff-h01',
  bureauPassword: 'demo-bureau',
  ingestSecret: 'demo-svc-ingest',
  alertsSecret: 'demo-svc-alerts',
  deviceSecret: 'demo-h01-sd-f1-corridor',
  simulatorSecret: 'demo-svc-simulator',
  wrongPassword: `WrongPw-${rand()}`,
  wrongPassword2: `Wrong Pw "quoted" ${rand()}`,
  unknownUserPassword: `NoUserPw-${rand()}`,
  brokenBodyPassword: `BrokenPw-${rand()}`,
  wrongDeviceSecret: `WrongDev-${rand()}`,
  unknownDeviceSecret: `NoDev-${rand()}`,
  wrongServiceSecret: `WrongSvc-${rand()}`,
  forgedToken: `${rand()}.${rand()}`,
};
/** Raw, and as it reads inside a JSON log line (quotes and backslashes escaped). */
const found = (text: string, secrets: Record<string, string>): string[] =>
  Object.entries(secrets)
    .filter(([, v]) => v !== '' && (text.includes(v) || text.includes(JSON.stringify(v).slice(1, -1))))
    .map(([k]) => k);

let dir: string;
const procs: TestProcess[] = [];
let http: string;
let mqttUrl: string;
const issued: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'carewatch-log-secrets-'));
  const influx = testInflux('log_secrets');
  const [mqttPort, wsPort, httpPort, ingestPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  http = `http://127.0.0.1:${httpPort}`;
  const common = { CAREWATCH_REGISTRY: DEMO_SITE_PATH, CAREWATCH_MQTT_URL: mqttUrl, CAREWATCH_INFLUX_URL: influx.url, CAREWATCH_INFLUX_DB: influx.database, CAREWATCH_LOG_LEVEL: 'debug' };
  const broker = startProcess('broker', 'broker/main.ts', { ...common, CAREWATCH_BROKER_PORT: String(mqttPort), CAREWATCH_BROKER_WS_PORT: String(wsPort), CAREWATCH_BROKER_STORE_DIR: join(dir, 'broker') });
  procs.push(broker);
  await broker.waitForOutput(/broker listening/);
  procs.push(startProcess('ingest', 'ingest/main.ts', { ...common, CAREWATCH_INGEST_PASSWORD: SECRETS.ingestSecret, CAREWATCH_SPOOL_DIR: join(dir, 'spool'), CAREWATCH_INGEST_HTTP_PORT: String(ingestPort) }));
  procs.push(
    startProcess('alerts', 'alerts/main.ts', {
      ...common,
      CAREWATCH_ALERTS_PASSWORD: SECRETS.alertsSecret,
      CAREWATCH_HTTP_PORT: String(httpPort),
      CAREWATCH_STATE_DIR: join(dir, 'alerts'),
      CAREWATCH_TOKEN_SECRET: TOKEN_KEY,
      UV_THREADPOOL_SIZE: '16',
      MALLOC_MMAP_THRESHOLD_: '131072',
    }),
  );
  await eventually('alerts /health', async () => ((await fetch(`${http}/health`)).ok ? true : undefined));
  await eventually('ingest /healthz', async () => ((await fetch(`http://127.0.0.1:${ingestPort}/healthz`)).ok ? true : undefined));
}, 90_000);

afterAll(async () => {
  for (const p of procs.reverse()) await p.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function login(username: string, password: string, from = '127.0.0.1'): Promise<{ status: number; token?: string }> {
  const res = await fetch(`${http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': from }, body: JSON.stringify({ username, password }) });
  const body = (await res.json()) as { token?: string };
  return { status: res.status, ...(body.token ? { token: body.token } : {}) };
}

async function mqttAttempt(username: string, password: string, clientId = username): Promise<boolean> {
  try {
    const c = await mqtt.connectAsync(mqttUrl, { clientId, username, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
    if (username === 'h01-sd-f1-corridor') await c.publishAsync(deviceTopic('h01', 'h01-sd-f1-corridor', 'telemetry'), JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: 21 } }), { qos: 1 });
    await c.endAsync();
    return true;
  } catch {
    return false;
  }
}

async function socketAttempt(token: string): Promise<boolean> {
  const s = connectClient(http, { auth: { token }, transports: ['websocket'], reconnection: false });
  try {
    return await new Promise<boolean>((resolve) => {
      s.once('connect', () => {
        s.emit('ack', 'no-such-alert', () => resolve(true));
      });
      s.once('connect_error', () => resolve(false));
    });
  } finally {
    s.close();
  }
}

describe('a full run logs no secret', () => {
  it('passwords, device and service secrets, tokens and the HMAC key appear in no log line', async () => {
    // Web logins: right, wrong (until throttled), unknown user, broken bodies.
    const ok = await login('staff-h01', SECRETS.staffPassword);
    expect(ok.status).toBe(200);
    issued.staffToken = ok.token ?? '';
    issued.staffTokenSignature = (ok.token ?? '').split('.')[1] ?? '';
    const bureau = await login('bureau', SECRETS.bureauPassword);
    issued.bureauToken = bureau.token ?? '';
    for (let i = 0; i < 7; i++) expect([401, 429]).toContain((await login('staff-h01', i % 2 ? SECRETS.wrongPassword : SECRETS.wrongPassword2)).status);
    expect((await login('no-such-user', SECRETS.unknownUserPassword)).status).toBe(401);
    const broken = await fetch(`${http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"username":"staff-h02","password":"${SECRETS.brokenBodyPassword}"` });
    expect(broken.status).toBe(400);
    await fetch(`${http}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'staff-h02', password: SECRETS.brokenBodyPassword, extra: 1 }) });

    // The API with good and forged bearer tokens.
    expect((await fetch(`${http}/api/me`, { headers: { authorization: `Bearer ${issued.staffToken}` } })).status).toBe(200);
    expect((await fetch(`${http}/api/me`, { headers: { authorization: `Bearer ${SECRETS.forgedToken}` } })).status).toBe(401);
    expect((await fetch(`${http}/api/alerts/x/ack`, { method: 'POST', headers: { authorization: `Bearer ${SECRETS.forgedToken}` } })).status).toBe(401);

    // socket.io: good tokens connect and act, a forged one is refused.
    expect(await socketAttempt(issued.staffToken)).toBe(true);
    expect(await socketAttempt(issued.bureauToken)).toBe(true);
    expect(await socketAttempt(SECRETS.forgedToken)).toBe(false);

    // MQTT: a device with its secret, and wrong secrets for a device, an unknown device and a service.
    expect(await mqttAttempt('h01-sd-f1-corridor', SECRETS.deviceSecret)).toBe(true);
    expect(await mqttAttempt('h01-sd-f1-corridor', SECRETS.wrongDeviceSecret)).toBe(false);
    expect(await mqttAttempt('h99-nobody', SECRETS.unknownDeviceSecret)).toBe(false);
    expect(await mqttAttempt('svc-simulator', SECRETS.wrongServiceSecret)).toBe(false);
    expect(await mqttAttempt('svc-simulator', SECRETS.simulatorSecret)).toBe(true);

    // Stop them: shutdown logs too.
    for (const p of [...procs].reverse()) await p.stop();

    const logs = Object.fromEntries(procs.map((p) => [p.logPath, p.output()]));
    const all = Object.values(logs).join('\n');
    // Not vacuous: every process logged at debug, the refusals among it.
    expect(all).toMatch(/login refused/);
    expect(all).toMatch(/AUTH_INVALID_CREDENTIALS|BROKER_BAD_CREDENTIALS|bad credentials|not authorized/i);
    for (const p of procs) expect(p.output().length, p.logPath).toBeGreaterThan(100);
    const leaks = Object.entries(logs).flatMap(([path, text]) => found(text, { ...SECRETS, ...issued }).map((k) => `${k} in ${path}`));
    expect(leaks).toEqual([]);
  }, 120_000);
});

describe('common/logger.ts redaction (defence in depth)', () => {
  it('censors password, secret, token and authorization fields wherever a component puts them', () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = pino({ level: 'debug', redact: LOG_REDACT }, stream);
    const s = `S3cret-${rand()}`;
    log.info({ password: s, secret: s, token: s, authorization: `Bearer ${s}`, auth: { token: s }, headers: { authorization: `Bearer ${s}` }, req: { headers: { authorization: s, cookie: s } }, body: { password: s }, config: { tokenSecret: s, alertsPassword: s, ingestPassword: s } }, 'x');
    expect(lines.join('')).not.toContain(s);
    expect(lines.join('')).toContain('[redacted]');
  });
});
