import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import type { Alerts } from '../../../alerts/alerts.ts';
import type { RuleInput } from '../../../alerts/rules/types.ts';
import type { Disablement } from '../../../contract/incidents.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { loginToken, startAlerts, tempDir } from '../support/harness.ts';

/**
 * Issue 11 test and maintenance mode over REST, on a real alerts process (test rules, manual
 * clock): role scoping, validation, and that a disabled point's fire signal raises no alert.
 */
const clock = createManualClock();
const registry = demoRegistry();
const MIN = 60_000;
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
const tokens = new Map<string, string>();

async function call(username: string | undefined, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object): Promise<{ status: number; body: any }> {
  let auth: Record<string, string> = {};
  if (username !== undefined) {
    if (!tokens.has(username)) tokens.set(username, await loginToken(alerts, username));
    auth = { authorization: `Bearer ${tokens.get(username)}` };
  }
  const res = await alerts.app.inject({ method, url, headers: auth, ...(payload !== undefined ? { payload } : {}) });
  return { status: res.statusCode, body: res.body === '' ? undefined : res.json() };
}

function smoke(deviceId: string, v: number): RuleInput {
  const now = clock.now();
  return { type: 'telemetry', now, device: registry.device(deviceId)!, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: v } };
}
function spo2(deviceId: string, v: number): RuleInput {
  const now = clock.now();
  return { type: 'telemetry', now, device: registry.device(deviceId)!, ts: now, receivedTs: now, metrics: { spo2_pct: v } };
}
const req = { scope: 'room', targetId: 'r101', mode: 'test', reason: 'quarterly detector test', durationMin: 60 };

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('disable_api'), stateDir: dir.path, clock });
});
afterAll(async () => {
  await alerts.close();
  await dir.remove();
});

describe('who may create one', () => {
  it('needs a token', async () => {
    expect((await call(undefined, 'POST', '/api/homes/h01/disablements', req)).body).toMatchObject({ code: 'AUTH_REQUIRED' });
    expect((await call(undefined, 'GET', '/api/disablements')).status).toBe(401);
  });

  it('staff and bureau may not (403); a director of another home gets 404', async () => {
    expect(await call('staff-h01', 'POST', '/api/homes/h01/disablements', req)).toMatchObject({ status: 403, body: { code: 'AUTH_FORBIDDEN' } });
    expect(await call('bureau', 'POST', '/api/homes/h01/disablements', req)).toMatchObject({ status: 403, body: { code: 'AUTH_FORBIDDEN' } });
    expect(await call('director-h02', 'POST', '/api/homes/h01/disablements', req)).toMatchObject({ status: 404, body: { code: 'HOME_NOT_FOUND' } });
    expect((await call('bureau', 'GET', '/api/disablements')).body).toEqual([]);
  });

  it('bad requests get their reason', async () => {
    expect(await call('director-h01', 'POST', '/api/homes/h01/disablements', { ...req, durationMin: 24 * 60 + 1 })).toMatchObject({ status: 400, body: { code: 'API_BAD_REQUEST' } });
    expect(await call('director-h01', 'POST', '/api/homes/h01/disablements', { ...req, reason: '' })).toMatchObject({ status: 400, body: { code: 'API_BAD_REQUEST' } });
    expect(await call('director-h01', 'POST', '/api/homes/h01/disablements', { ...req, scope: 'device', targetId: 'h01-vs-p01' })).toMatchObject({ status: 400, body: { code: 'DISABLEMENT_CARE_DEVICE' } });
    expect(await call('director-h01', 'POST', '/api/homes/h01/disablements', { ...req, scope: 'device', targetId: 'h02-sd-r101' })).toMatchObject({ status: 404, body: { code: 'DISABLEMENT_TARGET_NOT_FOUND' } });
    expect(await call('director-h01', 'POST', '/api/homes/h01/disablements', { ...req, targetId: 'r999' })).toMatchObject({ status: 404, body: { code: 'DISABLEMENT_TARGET_NOT_FOUND' } });
  });
});

describe('a room in test mode', () => {
  let room: Disablement;
  let other: Disablement;

  it('the director of the home creates it; an admin may for any home', async () => {
    const res = await call('director-h01', 'POST', '/api/homes/h01/disablements', req);
    expect(res.status).toBe(201);
    room = res.body as Disablement;
    expect(room).toMatchObject({ homeId: 'h01', scope: 'room', targetId: 'r101', mode: 'test', by: 'director-h01', startedAt: clock.now(), until: clock.now() + 60 * MIN, suppressedSignals: 0, version: 1 });
    const adm = await call('admin', 'POST', '/api/homes/h02/disablements', { ...req, scope: 'device', targetId: 'h02-sd-r102', mode: 'disabled', durationMin: 30 });
    expect(adm.status).toBe(201);
    other = adm.body as Disablement;
  });

  it('staff see their home only, bureau every home; another home is 404', async () => {
    expect((await call('staff-h01', 'GET', '/api/disablements')).body.map((d: Disablement) => d.id)).toEqual([room.id]);
    expect((await call('director-h02', 'GET', '/api/disablements')).body.map((d: Disablement) => d.id)).toEqual([other.id]);
    expect((await call('bureau', 'GET', '/api/disablements')).body.map((d: Disablement) => d.id).sort()).toEqual([room.id, other.id].sort());
    expect((await call('bureau', 'GET', '/api/disablements?homeId=h02')).body.map((d: Disablement) => d.id)).toEqual([other.id]);
    expect(await call('staff-h02', 'GET', `/api/disablements/${room.id}`)).toMatchObject({ status: 404, body: { code: 'DISABLEMENT_NOT_FOUND' } });
    expect((await call('staff-h01', 'GET', `/api/disablements/${room.id}`)).body.audit.map((e: { action: string }) => e.action)).toEqual(['created']);
    const health = await alerts.app.inject({ method: 'GET', url: '/health' });
    expect(health.json()).toMatchObject({ disablementsInForce: 2, disabledPoints: 2 });
  });

  it("its detector's fire signal raises no alert (recorded in the audit); a resident's care signal in the same room does", async () => {
    alerts.handleInput(smoke('h01-sd-r101', 20));
    alerts.handleInput(spo2('h01-vs-p01', 85));
    alerts.handleInput(smoke('h01-sd-r102', 20)); // next door, not disabled
    expect(alerts.lifecycle.open().map((a) => [a.rule, a.deviceId]).sort()).toEqual([
      ['test_smoke', 'h01-sd-r102'],
      ['test_spo2', 'h01-vs-p01'],
    ]);
    const got = (await call('staff-h01', 'GET', `/api/disablements/${room.id}`)).body;
    expect(got).toMatchObject({ suppressedSignals: 1, version: 2 });
    expect(got.audit[1]).toMatchObject({ action: 'signal_suppressed', rule: 'test_smoke', deviceId: 'h01-sd-r101', sourceTs: clock.now() });
  });

  it('staff and bureau may not end it, a director of another home gets 404; its director ends it early and the detector still in alarm is raised then', async () => {
    expect(await call('staff-h01', 'DELETE', `/api/disablements/${room.id}`)).toMatchObject({ status: 403, body: { code: 'AUTH_FORBIDDEN' } });
    expect(await call('bureau', 'DELETE', `/api/disablements/${room.id}`)).toMatchObject({ status: 403, body: { code: 'AUTH_FORBIDDEN' } });
    expect(await call('director-h02', 'DELETE', `/api/disablements/${room.id}`)).toMatchObject({ status: 404, body: { code: 'DISABLEMENT_NOT_FOUND' } });
    clock.advance(5 * MIN);
    const ended = await call('director-h01', 'DELETE', `/api/disablements/${room.id}`);
    expect(ended).toMatchObject({ status: 200, body: { id: room.id, endedAt: clock.now(), endedBy: 'director-h01' } });
    expect(alerts.lifecycle.open().find((a) => a.deviceId === 'h01-sd-r101')).toMatchObject({ rule: 'test_smoke', state: 'raised', raisedAt: clock.now() });
    expect(await call('director-h01', 'DELETE', `/api/disablements/${room.id}`)).toMatchObject({ status: 409, body: { code: 'DISABLEMENT_ENDED' } });
    expect((await call('staff-h01', 'GET', '/api/disablements')).body).toEqual([]);
    expect((await call('staff-h01', 'GET', '/api/disablements?all=true')).body.map((d: Disablement) => d.id)).toEqual([room.id]);
    const audit = (await call('bureau', 'GET', `/api/disablements/${room.id}`)).body.audit.map((e: { action: string }) => e.action);
    expect(audit).toEqual(['created', 'signal_suppressed', 'ended_by_person', 'signal_released']);
  });

  it("the admin's one ends by itself at its end time", async () => {
    clock.advance(30 * MIN);
    expect((await call('bureau', 'GET', '/api/disablements')).body).toEqual([]);
    expect((await call('bureau', 'GET', `/api/disablements/${other.id}`)).body).toMatchObject({ endedAt: other.until, endedBy: 'system' });
  });

  it('is described in the OpenAPI document', async () => {
    const doc = (await call(undefined, 'GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/disablements'] ?? {})).toEqual(['get']);
    expect(Object.keys(doc.paths['/api/disablements/{id}'] ?? {}).sort()).toEqual(['delete', 'get']);
    expect(doc.paths['/api/homes/{homeId}/disablements']?.post).toMatchObject({ requestBody: { content: { 'application/json': { schema: { required: expect.arrayContaining(['scope', 'targetId', 'mode', 'reason', 'durationMin']) } } } } });
  });
});
