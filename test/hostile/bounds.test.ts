import { request } from 'node:http';
import { io as connectClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alerts } from '../../alerts/alerts.ts';
import { DEFAULT_LOGIN_LIMITS, MAX_TRACKED, backoffLog } from '../../alerts/http/auth-routes.ts';
import { HANDSHAKE_LIMITS } from '../../alerts/socket-handshakes.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../contract/socket-events.ts';
import { testInflux } from '../support/influx-db.ts';
import { parseExposition } from '../metrics/exposition.ts';
import { loginToken, startAlerts, tempDir, until } from '../alerts/support/harness.ts';

/**
 * Issue 12: the alerts process grew under hostile HTTP. What hostile clients can make it keep is
 * bounded, and these tests fail if a bound is removed (sizes of the structures, never RSS):
 * - socket.io sessions that never authenticate (alerts/socket-handshakes.ts): per address and in all;
 * - wrong-login records (alerts/http/auth-routes.ts backoffLog, MAX_TRACKED);
 * - Prometheus series: no label value comes from user input, so hostile requests add no series.
 * The measured RSS growth and its main cause (glibc arenas keeping scrypt blocks; a launcher
 * setting, docs/alerts.md "Memory") are in test/hostile/alerts-rss.ts and the report.
 */
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
const clients: Socket[] = [];

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('hostile_bounds'), stateDir: dir.path });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await alerts?.close();
  await dir?.remove();
});

/** One engine.io handshake (what a socket.io client sends first), from `localAddress`; resolves the status. */
function handshake(localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: alerts.port, path: '/socket.io/?EIO=4&transport=polling', localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function handshakes(addresses: readonly string[], each: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  for (let i = 0; i < each; i++) {
    const round = await Promise.all(addresses.map((a) => handshake(a)));
    for (const s of round) statuses.set(s, (statuses.get(s) ?? 0) + 1);
  }
  return statuses;
}

const pending = (): number => alerts.stats().pendingHandshakes as number;

async function realClient(username: string): Promise<Socket<ServerToClientEvents, ClientToServerEvents>> {
  const token = await loginToken(alerts, username);
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, reconnection: false });
  clients.push(socket);
  let snapshot = false;
  socket.on('snapshot', () => (snapshot = true));
  await until(() => snapshot, `${username} snapshot`);
  return socket;
}

describe('socket.io sessions that never authenticate', () => {
  it('are bounded per client address: the flood is refused at its source, a page elsewhere connects', async () => {
    const statuses = await handshakes(['127.0.0.2'], HANDSHAKE_LIMITS.perAddress + 100);
    expect(statuses.get(200)).toBe(HANDSHAKE_LIMITS.perAddress);
    expect(statuses.get(403)).toBe(100);
    expect(pending()).toBe(HANDSHAKE_LIMITS.perAddress);
    expect(alerts.stats().sockets).toBe(HANDSHAKE_LIMITS.perAddress);
    // The duty desk (another address, polling then upgrade, as the page does) gets in, and is not counted as waiting.
    const desk = await realClient('staff-h01');
    expect(desk.connected).toBe(true);
    expect(pending()).toBe(HANDSHAKE_LIMITS.perAddress);
  });

  it('are bounded in all: from many addresses the oldest waiting are closed, and a page still connects', async () => {
    const addresses = Array.from({ length: 40 }, (_, i) => `127.0.1.${i + 1}`);
    const statuses = await handshakes(addresses, 60); // 2,400 handshakes, 60 per address (< perAddress)
    expect(statuses.get(200)).toBe(2400);
    expect(pending()).toBeLessThanOrEqual(HANDSHAKE_LIMITS.total);
    expect(pending()).toBe(HANDSHAKE_LIMITS.total);
    const bureau = await realClient('bureau');
    expect(bureau.connected).toBe(true);
  });
});

describe('wrong-login records', () => {
  it('keep at most MAX_TRACKED keys, the newest kept (a spray of usernames cannot grow memory)', () => {
    const log = backoffLog(DEFAULT_LOGIN_LIMITS);
    for (let i = 0; i < MAX_TRACKED + 500; i++) log.add(`u:user-${i}\u0000203.0.113.9`, 1000);
    expect(log.size()).toBe(MAX_TRACKED);
    // The newest attacker is still slowed down: its record was kept.
    const newest = `u:user-${MAX_TRACKED + 499}\u0000203.0.113.9`;
    for (let i = 0; i < DEFAULT_LOGIN_LIMITS.freeFailures; i++) log.add(newest, 1000);
    expect(log.waitMs(newest, DEFAULT_LOGIN_LIMITS.freeFailures, 1000)).toBeGreaterThan(0);
    expect(log.size()).toBe(MAX_TRACKED);
  });
});

describe('Prometheus series', () => {
  it('hostile requests (routes, queries, logins, tokens, bodies) add no series to /metrics', async () => {
    const series = async (): Promise<Set<string>> => {
      const res = await alerts.app.inject({ url: '/metrics' });
      expect(res.statusCode).toBe(200);
      return new Set(parseExposition(res.body).samples.filter((s) => s.name.startsWith('carewatch_')).map((s) => `${s.name}${JSON.stringify(s.labels)}`));
    };
    const before = await series();
    for (let i = 0; i < 200; i++) {
      const junk = `x${i}-${'é'.repeat(i % 5)}`;
      await alerts.app.inject({ url: `/api/${junk}?code=${junk}&home=${junk}` });
      await alerts.app.inject({ url: `/api/homes/${junk}/history?metric=${junk}`, headers: { authorization: `Bearer ${junk}.${junk}` } });
      await alerts.app.inject({ method: 'POST', url: `/api/alerts/${junk}/ack`, payload: `{"comment":${junk}`, headers: { 'content-type': 'application/json' } });
    }
    for (let i = 0; i < 10; i++) await alerts.app.inject({ method: 'POST', url: '/api/login', payload: { username: `nobody-${i}`, password: 'x' }, remoteAddress: `198.51.100.${i}` });
    const after = await series();
    expect([...after].filter((s) => !before.has(s))).toEqual([]);
  });
});
