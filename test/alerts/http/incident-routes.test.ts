import { Value } from '@sinclair/typebox/value';
import { afterAll, describe, expect, it } from 'vitest';
import { IncidentMessage } from '../../../contract/incidents.ts';
import { appFixture } from '../support/app-fixture.ts';
import { careSignal, fireSignal } from '../support/signals.ts';

const fx = appFixture();
afterAll(() => fx.app.close());
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

const smoke = (roomId: string) => fireSignal({ key: `smoke:h01-sd-${roomId}`, roomId, deviceId: `h01-sd-${roomId}`, message: { zh: roomId, en: roomId } });

describe('incidents API (issue 11)', () => {
  it('lists open incidents role-scoped and filterable; another home\'s staff get 404', async () => {
    fx.lifecycle.applySignals([smoke('r101'), smoke('f1-corridor'), smoke('r105'), careSignal(), careSignal({ key: 'spo2:h02-p01', homeId: 'h02', residentId: 'h02-p01', deviceId: undefined, roomId: undefined })]);
    const s1 = await fx.login('staff-h01');
    const s2 = await fx.login('staff-h02');
    const b = await fx.login('bureau');
    const list1 = (await fx.app.inject({ url: '/api/incidents', headers: auth(s1) })).json() as IncidentMessage[];
    expect(list1.map((i) => [i.kind, i.points.length]).sort()).toEqual([
      ['care', 1],
      ['fire', 3],
    ]);
    for (const i of list1) expect(Value.Check(IncidentMessage, i)).toBe(true);
    const fire = list1.find((i) => i.kind === 'fire')!;
    expect(fire.roomIds).toEqual(['r101', 'f1-corridor', 'r105']);
    const listB = (await fx.app.inject({ url: '/api/incidents', headers: auth(b) })).json() as IncidentMessage[];
    expect(listB.map((i) => i.homeId).sort()).toEqual(['h01', 'h01', 'h02']);
    const fires = (await fx.app.inject({ url: '/api/incidents?kind=fire', headers: auth(b) })).json() as IncidentMessage[];
    expect(fires.map((i) => i.id)).toEqual([fire.id]);
    expect(((await fx.app.inject({ url: '/api/incidents?homeId=h02', headers: auth(b) })).json() as unknown[]).length).toBe(1);
    expect(((await fx.app.inject({ url: '/api/incidents?state=acknowledged', headers: auth(b) })).json() as unknown[]).length).toBe(0);
    expect((await fx.app.inject({ url: '/api/incidents?kind=flood', headers: auth(b) })).statusCode).toBe(400);
    // Staff of another home: not listed, not found, cannot act.
    expect(((await fx.app.inject({ url: '/api/incidents', headers: auth(s2) })).json() as IncidentMessage[]).every((i) => i.homeId === 'h02')).toBe(true);
    const other = await fx.app.inject({ url: `/api/incidents/${fire.id}`, headers: auth(s2) });
    expect(other.statusCode).toBe(404);
    expect(other.json().code).toBe('INCIDENT_NOT_FOUND');
    expect((await fx.app.inject({ method: 'POST', url: `/api/incidents/${fire.id}/ack`, headers: auth(s2) })).statusCode).toBe(404);
    expect(fx.lifecycle.incident(fire.id)?.acknowledgedAt).toBeUndefined();
    expect((await fx.app.inject({ url: '/api/incidents' })).statusCode).toBe(401);
  });

  it('one incident with its audit, member alerts and timing; ack/confirm/resolve act on every member', async () => {
    const s1 = await fx.login('staff-h01');
    const fire = fx.lifecycle.openIncidents().find((i) => i.kind === 'fire')!;
    const one = (await fx.app.inject({ url: `/api/incidents/${fire.id}`, headers: auth(s1) })).json() as IncidentMessage & { audit: Array<{ action: string }>; alerts: Array<{ id: string; incidentId: string }>; timing: { targetMs: number } };
    expect(one.audit.map((e) => e.action)).toEqual(['opened', 'point_added', 'point_added']);
    expect(one.alerts.map((a) => a.incidentId)).toEqual([fire.id, fire.id, fire.id]);
    expect(one.timing.targetMs).toBe(10_000);
    // The member alerts are still there, each with its incident.
    const alert = (await fx.app.inject({ url: `/api/alerts/${one.alerts[1]!.id}`, headers: auth(s1) })).json() as { incidentId: string };
    expect(alert.incidentId).toBe(fire.id);

    const ack = await fx.app.inject({ method: 'POST', url: `/api/incidents/${fire.id}/ack`, headers: auth(s1), payload: { comment: 'going' } });
    expect(ack.statusCode).toBe(200);
    expect(ack.json()).toMatchObject({ id: fire.id, state: 'acknowledged', acknowledgedBy: 'staff-h01' });
    for (const a of one.alerts) expect(fx.lifecycle.get(a.id)).toMatchObject({ state: 'acknowledged' });
    const again = await fx.app.inject({ method: 'POST', url: `/api/incidents/${fire.id}/ack`, headers: auth(s1) });
    expect([again.statusCode, again.json().code]).toEqual([409, 'INCIDENT_ALREADY_ACKNOWLEDGED']);
    // Through a member alert: the incident's rules, named as the alert's.
    expect((await fx.app.inject({ method: 'POST', url: `/api/alerts/${one.alerts[0]!.id}/resolve`, headers: auth(s1) })).json().code).toBe('ALERT_NOT_CONFIRMED');
    const notConfirmed = await fx.app.inject({ method: 'POST', url: `/api/incidents/${fire.id}/resolve`, headers: auth(s1) });
    expect([notConfirmed.statusCode, notConfirmed.json().code]).toEqual([409, 'INCIDENT_NOT_CONFIRMED']);
    expect((await fx.app.inject({ method: 'POST', url: `/api/incidents/${fire.id}/confirm`, headers: auth(s1), payload: { confirmation: 'maybe' } })).statusCode).toBe(400);
    const confirm = await fx.app.inject({ method: 'POST', url: `/api/incidents/${fire.id}/confirm`, headers: auth(s1), payload: { confirmation: 'false_alarm', comment: 'steam' } });
    expect(confirm.json()).toMatchObject({ state: 'confirmed', confirmation: 'false_alarm' });
    const resolve = await fx.app.inject({ method: 'POST', url: `/api/incidents/${fire.id}/resolve`, headers: auth(s1), payload: { comment: 'reset' } });
    expect(resolve.json()).toMatchObject({ state: 'resolved', resolvedBy: 'staff-h01' });
    for (const a of one.alerts) expect(fx.lifecycle.get(a.id)).toMatchObject({ state: 'resolved', confirmation: 'false_alarm' });
    // A resolved incident is still served (from memory here), no longer listed as open.
    expect((await fx.app.inject({ url: `/api/incidents/${fire.id}`, headers: auth(s1) })).json()).toMatchObject({ state: 'resolved' });
    expect(((await fx.app.inject({ url: '/api/incidents?kind=fire', headers: auth(s1) })).json() as unknown[]).length).toBe(0);
    expect((await fx.app.inject({ url: '/api/incidents/not%20an%20id', headers: auth(s1) })).statusCode).toBe(400);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await fx.app.inject({ url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/incidents'] ?? {})).toEqual(['get']);
    expect(Object.keys(doc.paths['/api/incidents/{id}'] ?? {})).toEqual(['get']);
    for (const op of ['ack', 'confirm', 'resolve']) expect(Object.keys(doc.paths[`/api/incidents/{id}/${op}`] ?? {})).toEqual(['post']);
  });
});
