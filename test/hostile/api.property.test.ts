import fc from 'fast-check';
import { io as connectClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alerts } from '../../alerts/alerts.ts';
import { ALERT_ERRORS } from '../../alerts/errors.ts';
import { testInflux } from '../support/influx-db.ts';
import { loginToken, startAlerts, tempDir, until } from '../alerts/support/harness.ts';

/**
 * Issue 12 "Hostile input": the alerts process's doors for people. REST bodies, path parameters,
 * query strings and headers (every route of the real app, from its own OpenAPI document, through
 * fastify `inject`), and socket.io messages (every client→server event of
 * contract/socket-events.ts as alerts/socket.ts and alerts/disablements/socket-handlers.ts handle
 * them, over a real socket). Any input gives a valid answer or a clear rejection: an error body
 * `{ code, message }` with a code of the catalogue (alerts/errors.ts, alerts/http/route-support.ts),
 * never a 500 (API_INTERNAL, something threw), never a hang, and the process serves on.
 */
const CODES = new Set<string>([...Object.keys(ALERT_ERRORS), 'INFLUX_UNAVAILABLE']);
/** 503s that are answers, not failures: the login limiter full, InfluxDB away. */
const ANSWERED_503 = new Set(['AUTH_BUSY', 'INFLUX_UNAVAILABLE']);

let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
let tokens: Record<'staff' | 'director' | 'bureau', string>;
let routes: Array<{ method: string; path: string; query: string[] }>;

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('hostile_api'), stateDir: dir.path });
  tokens = { staff: await loginToken(alerts, 'staff-h01'), director: await loginToken(alerts, 'director-h01'), bureau: await loginToken(alerts, 'bureau') };
  const doc = (await alerts.app.inject({ url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>> };
  routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name) })),
  );
});
afterAll(async () => {
  await alerts?.close();
  await dir?.remove();
});

const hostileSegment = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('h01', 'h02', 'h01-r101', 'a'.repeat(300), '..', '%00', '__proto__', 'constructor', '-1', '1e309', 'NaN', '😀', ' ', 'null'),
);
const hostileQueryValue = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('', '-1', '0', '1e309', 'NaN', '9999999999999999999', '2026-13-45', 'x'.repeat(3000), 'h01', '24h', '30d', 'true'));

const request = fc.record({
  route: fc.nat(),
  method: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), { freq: 3 }),
  params: fc.array(hostileSegment, { minLength: 3, maxLength: 3 }),
  query: fc.array(fc.tuple(fc.oneof(fc.constantFrom('home', 'resident', 'metric', 'range', 'from', 'to', 'month', 'state', '__proto__', 'a[b]'), fc.string({ maxLength: 8 })), hostileQueryValue), { maxLength: 4 }),
  rawQuery: fc.option(fc.constantFrom('%ZZ', '&&&', '=', 'a=1&a=2&a=3', '__proto__[x]=1', `${'k'.repeat(20)}=${'v'.repeat(20)}&`.repeat(200)), { freq: 4 }),
  auth: fc.constantFrom('none', 'staff', 'director', 'bureau', 'garbage', 'expired-shape'),
  contentType: fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded'),
  body: fc.option(
    fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
      fc.constantFrom('{"comment":', '{"comment":"x"}{', '\u0000\u0001', '{"__proto__":{"admin":true}}', `{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`, `{"comment":"${'x'.repeat(70_000)}"}`, '{"confirmation":"real_fire","comment":"x"}'),
      fc.record({ comment: fc.string({ maxLength: 1200 }), confirmation: fc.constantFrom('real_fire', 'false_alarm', 'test', 'fault', 'x'), username: fc.string({ maxLength: 70 }), password: fc.string({ maxLength: 300 }) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
    ),
    { freq: 2 },
  ),
});

describe('REST (alerts/http, fastify inject on a real alerts instance)', () => {
  it('every route answers any path, query, header and body with a value or a catalogued error', async () => {
    expect(routes.length).toBeGreaterThan(15);
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const route = routes[r.route % routes.length]!;
        let i = 0;
        const path = route.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(r.params[i++ % 3] ?? ''));
        const query = r.rawQuery ?? r.query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
        const authorization =
          r.auth === 'none' ? undefined : r.auth === 'garbage' ? 'Bearer x.y' : r.auth === 'expired-shape' ? `Bearer ${tokens.staff.slice(0, -3)}abc` : `Bearer ${tokens[r.auth]}`;
        const res = await alerts.app.inject({
          method: (r.method ?? route.method) as 'GET',
          url: `${path}${query ? `?${query}` : ''}`,
          headers: { ...(authorization ? { authorization } : {}), ...(r.contentType ? { 'content-type': r.contentType } : {}) },
          ...(r.body !== null && r.method !== 'GET' && r.method !== 'HEAD' ? { payload: r.body } : {}),
          remoteAddress: '192.0.2.10',
        });
        const what = `${r.method ?? route.method} ${path}?${query.slice(0, 100)} → ${res.statusCode} ${res.body.slice(0, 200)}`;
        if (res.statusCode >= 400 && (r.method ?? route.method) !== 'HEAD') {
          const body = res.json() as { code?: unknown; message?: unknown };
          expect(typeof body.code === 'string' && CODES.has(body.code), what).toBe(true);
          expect(typeof body.message, what).toBe('string');
          if (res.statusCode >= 500) expect(ANSWERED_503.has(String(body.code)), what).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
    // Still serving. A fresh login: the run may have signed its own tokens out (POST /api/logout is one of the routes).
    expect((await alerts.app.inject({ url: '/healthz' })).statusCode).toBeLessThan(600);
    expect((await alerts.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${await loginToken(alerts, 'staff-h01')}` } })).statusCode).toBe(200);
  });
});

describe('socket.io messages (alerts/socket.ts)', () => {
  const EVENTS = ['ack', 'confirm', 'resolve', 'ackIncident', 'confirmIncident', 'resolveIncident', 'disable', 'enable'] as const;
  const sockets: Socket[] = [];
  afterAll(() => {
    for (const s of sockets) s.close();
  });
  /** A page of this user with a token of its own (the REST run above may have signed the shared ones out). */
  async function connect(username: string): Promise<Socket> {
    const token = await loginToken(alerts, username);
    const socket = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
    sockets.push(socket);
    await until(() => socket.connected, 'socket connected');
    return socket;
  }
  const arg = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(undefined, null, '', 'a'.repeat(200), 'real_fire', '__proto__', { toString: 'x' }, { scope: 'device', target: 'h01-sd-f1-corridor', mode: 'test', minutes: 1e309 }),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  );

  it('every client→server event answers any arguments with a result or a catalogued code; the socket stays up', async () => {
    const staff = await connect('staff-h01');
    const director = await connect('director-h01');
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.oneof(fc.constantFrom(...EVENTS), fc.string({ maxLength: 12 })), fc.array(arg, { maxLength: 5 }), fc.boolean(), async (asDirector, event, args, withReply) => {
        const socket = asDirector ? director : staff;
        const known = (EVENTS as readonly string[]).includes(event);
        if (!known || !withReply) {
          // No reply expected (unknown event, or no callback): the server must just not fall over.
          socket.emit(event, ...args);
          return;
        }
        // socket.io puts the callback last; handlers read it at their own arity, so extra or missing
        // arguments mean the "reply" is some other value: pad or cut to the event's arity.
        const arity = { ack: 1, enable: 1, disable: 1, ackIncident: 1, resolve: 2, resolveIncident: 2, confirm: 3, confirmIncident: 3 }[event as (typeof EVENTS)[number]];
        const fitted = Array.from({ length: arity }, (_, i) => args[i]);
        const result = (await socket.timeout(5000).emitWithAck(event, ...fitted)) as { ok?: unknown; code?: unknown };
        expect(typeof result.ok, JSON.stringify(result)).toBe('boolean');
        if (result.ok === false) expect(CODES.has(String(result.code)), JSON.stringify(result)).toBe(true);
      }),
      { numRuns: 300 },
    );
    // Both still connected and answering: an ack of an unknown alert is a clean ALERT_NOT_FOUND.
    expect(staff.connected && director.connected).toBe(true);
    expect(await staff.timeout(5000).emitWithAck('ack', 'no-such-alert')).toMatchObject({ ok: false, code: 'ALERT_NOT_FOUND' });
  });

  it('a message over the 16 KiB bound closes that socket only', async () => {
    const staff = await connect('staff-h01');
    const other = await connect('bureau');
    let closed = false;
    staff.on('disconnect', () => (closed = true));
    staff.emit('ack', 'x'.repeat(20_000));
    await until(() => closed, 'oversized socket closed');
    expect(other.connected).toBe(true);
    expect(await other.timeout(5000).emitWithAck('ack', 'no-such-alert')).toMatchObject({ ok: false, code: 'ALERT_NOT_FOUND' });
  });
});
