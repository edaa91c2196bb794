import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Disablement, IncidentMessage } from '../../contract/incidents.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { eventually } from '../support/process.ts';
import { device, login, startStack, watch, type Stack, type TestDevice, type WatchClient } from './stack.ts';

/**
 * Issue 11 across real processes (broker, ingest, alerts and the device simulator, each from its
 * main.ts): a pressed nurse call, a fire spreading through three rooms and a detector in test mode,
 * from real MQTT device clients to the socket.io streams of h01's duty staff, the bureau and h02's
 * duty staff.
 *
 * h01's devices are driven by this test (mqtt.js with their demo credentials), so the simulator runs
 * h02 only (a device id is its MQTT client id: the simulator and the test cannot both hold one).
 * h01's other devices are silent, so h01 soon has a home communication-loss incident (device kind);
 * assertions below filter by kind, device and room for that reason.
 *
 * The three parts share one stack and run in order. Their fires are kept apart on purpose: the
 * spreading fire is on floor 1 (r101 → f1-corridor → r102, adjoining in the registry), the detector
 * under test is on floor 3 (r301) and the live-stream probe is a call point on floor 2, adjoining
 * neither, so no point can join another part's incident.
 */
describe('issue 11 end to end: nurse call, one fire incident, test mode', () => {
  const { url, database } = testInflux('e2e_i11');
  let stack: Stack;
  let staff1: WatchClient;
  let staff2: WatchClient;
  let bureau: WatchClient;
  const devices: TestDevice[] = [];
  const open = async (id: string): Promise<TestDevice> => {
    const d = await device(stack.mqttUrl, id);
    devices.push(d);
    return d;
  };
  const last = (list: IncidentMessage[], id: string): IncidentMessage | undefined => list.filter((i) => i.id === id).sort((a, b) => a.version - b.version).at(-1);
  const nothingOfH01 = (c: WatchClient): void => {
    expect(c.received.filter((a) => a.homeId !== 'h02')).toEqual([]);
    expect(c.incidents.filter((i) => i.homeId !== 'h02')).toEqual([]);
  };
  // One login per user: the polls below must not run into the login rate limiter.
  const tokens = new Map<string, string>();
  const api = async <T>(path: string, username: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> => {
    let token = tokens.get(username);
    if (token === undefined) {
      token = (await login(stack.httpUrl, username)).token;
      tokens.set(username, token);
    }
    const res = await fetch(`${stack.httpUrl}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  beforeAll(async () => {
    stack = await startStack({ influxUrl: url, database, homes: ['h02'] });
    [staff1, staff2, bureau] = await Promise.all([watch(stack.httpUrl, 'staff-h01'), watch(stack.httpUrl, 'staff-h02'), watch(stack.httpUrl, 'bureau')]);
  }, 120_000);

  afterAll(async () => {
    for (const d of devices) await d.close().catch(() => undefined);
    for (const c of [staff1, staff2, bureau]) c?.close();
    await stack?.close();
  });

  it('a pressed nurse call reaches h01 staff and, escalated at once, the bureau; not h02 staff', async () => {
    const nc = await open('h01-nc-p01');
    await nc.event('sos_button');

    const call = await staff1.waitFor('the SOS alert of h01-p01', (a) => a.homeId === 'h01' && a.rule === 'sos' && a.deviceId === 'h01-nc-p01');
    expect(call).toMatchObject({ category: 'care', severity: 'critical', residentId: 'h01-p01', roomId: 'r101' });
    expect(call.incidentId).toBeDefined();
    const incident = await staff1.waitForIncident('the care incident of h01-p01', (i) => i.id === call.incidentId);
    expect(incident).toMatchObject({ homeId: 'h01', kind: 'care', severity: 'critical', residentId: 'h01-p01', roomIds: ['r101'] });
    expect(incident.points.map((p) => p.alertId)).toContain(call.id);

    // A call escalates at once to the bureau level (docs/rules.md "Call button"): the bureau gets both.
    const atBureau = await bureau.waitFor('the SOS alert, escalated', (a) => a.id === call.id && (a.escalationLevel ?? 0) >= 2);
    expect(atBureau).toMatchObject({ category: 'care', severity: 'critical', residentId: 'h01-p01' });
    const incidentAtBureau = await bureau.waitForIncident('the care incident, escalated', (i) => i.id === incident.id && (i.escalationLevel ?? 0) >= 2);
    expect(incidentAtBureau).toMatchObject({ kind: 'care', residentId: 'h01-p01', severity: 'critical' });

    // staff-h02 is connected to the same hub: it would have been sent the call by now.
    nothingOfH01(staff2);
  }, 120_000);

  it('a fire spreading r101 → corridor → r102 is one incident for staff and bureau, acknowledged once', async () => {
    const path = [
      { id: 'h01-sd-r101', room: 'r101' },
      { id: 'h01-sd-f1-corridor', room: 'f1-corridor' },
      { id: 'h01-sd-r102', room: 'r102' },
    ];
    const members: AlertMessage[] = [];
    for (const p of path) {
      const sd = await open(p.id);
      await sd.event('detector_alarm');
      // Each detector's alarm arrives before the next one fires, so the points' order is the spread's.
      members.push(await staff1.waitFor(`a fire alarm from ${p.id}`, (a) => a.category === 'fire' && a.deviceId === p.id && a.signal === 'alarm'));
    }
    const ids = new Set(members.map((a) => a.incidentId));
    expect(ids.size).toBe(1);
    const incidentId = [...ids][0] as string;

    const spread = (i: IncidentMessage): boolean => i.id === incidentId && i.points.length === 3;
    for (const c of [staff1, bureau]) {
      const inc = await c.waitForIncident('the incident with all three points', spread);
      expect(inc).toMatchObject({ homeId: 'h01', kind: 'fire', severity: 'critical', roomIds: ['r101', 'f1-corridor', 'r102'] });
      expect(inc.points.map((p) => [p.deviceId, p.roomId])).toEqual(path.map((p) => [p.id, p.room]));
      expect(inc.points.map((p) => p.alertId)).toEqual(members.map((a) => a.id));
      expect(inc.firstAlertId).toBe(members[0]?.id);
      // One fire, one incident: no other fire incident was opened for any of the three.
      expect(new Set(c.incidents.filter((i) => i.kind === 'fire').map((i) => i.id))).toEqual(new Set([incidentId]));
    }

    const reply = await staff1.socket.timeout(10_000).emitWithAck('ackIncident', incidentId);
    expect(reply).toMatchObject({ ok: true, incident: { id: incidentId, state: 'acknowledged', acknowledgedBy: 'staff-h01' } });
    for (const c of [staff1, bureau]) {
      await c.waitForIncident('the acknowledged incident', (i) => i.id === incidentId && i.state === 'acknowledged' && i.acknowledgedBy === 'staff-h01');
    }
    // Every member is acknowledged by that one acknowledgement: on the staff stream ...
    for (const m of members) {
      await staff1.waitFor(`member ${m.deviceId} acknowledged`, (a) => a.id === m.id && a.state === 'acknowledged' && a.acknowledgedBy === 'staff-h01');
    }
    // ... and in the incident's record, whose audit has exactly one acknowledgement.
    const { status, body } = await api<IncidentMessage & { alerts: AlertMessage[]; audit: Array<{ action: string }> }>(`/api/incidents/${incidentId}`, 'staff-h01');
    expect(status).toBe(200);
    expect(body.alerts.map((a) => a.id)).toEqual(members.map((a) => a.id));
    for (const a of body.alerts) expect(a).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'staff-h01', incidentId });
    expect(body.audit.filter((e) => e.action === 'acknowledged')).toHaveLength(1);
    expect(last(staff1.incidents, incidentId)?.state).toBe('acknowledged');

    nothingOfH01(staff2);
  }, 120_000);

  it('a detector in test mode raises no fire alarm while its readings and event are stored', async () => {
    const tested = 'h01-sd-r301';
    const request = { scope: 'device', targetId: tested, mode: 'test', reason: 'e2e: annual detector test (NFPA 72 ch. 14)', durationMin: 30 };
    const created = await api<Disablement>('/api/homes/h01/disablements', 'director-h01', { method: 'POST', body: request });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ homeId: 'h01', scope: 'device', targetId: tested, mode: 'test', by: 'director-h01' });

    // The tester smokes the head: readings at alarm level (≥ 4 %/m, docs/rules.md) and the detector's own alarm.
    const sd = await open(tested);
    for (const smoke of [6, 8, 8]) await sd.telemetry({ smoke_obscuration_pct_per_m: smoke, temperature_c: 24 });
    await sd.event('detector_alarm');

    // The stream is live: a call point on another floor, operated after the broker accepted the tested
    // detector's event (QoS 1, awaited), reaches staff and bureau. The alerts process reads events of
    // all devices on one ordered connection (alerts/mqtt.ts), so a fire alarm from that event would
    // have been sent before the call point's.
    const mcp = await open('h01-mcp-f2-corridor');
    await mcp.event('manual_call_point');
    for (const c of [staff1, bureau]) await c.waitFor('the call point\'s fire alarm', (a) => a.category === 'fire' && a.deviceId === 'h01-mcp-f2-corridor');

    const noFireOfTested = (): void => {
      for (const c of [staff1, bureau]) {
        expect(c.received.filter((a) => a.category === 'fire' && (a.deviceId === tested || a.roomId === 'r301'))).toEqual([]);
        expect(c.incidents.filter((i) => i.roomIds.includes('r301') || i.points.some((p) => p.deviceId === tested))).toEqual([]);
      }
    };
    noFireOfTested();

    // Not lost either: the rules saw the test and the disablement holds the conditions it raised.
    const held = await eventually('the tested detector\'s signals held by the disablement', async () => {
      const r = await api<Disablement & { audit: Array<{ action: string; rule?: string; deviceId?: string }> }>(`/api/disablements/${created.body.id}`, 'director-h01');
      const rules = new Set(r.body.audit.filter((e) => e.action === 'signal_suppressed' && e.deviceId === tested).map((e) => e.rule));
      return rules.has('fire_confirmed') && rules.has('smoke_prealarm') ? r.body : undefined;
    });
    expect(held.suppressedSignals).toBeGreaterThanOrEqual(2);
    // Readings travel on the separate live telemetry feed: now that the rules have judged them
    // (the pre-alarm is held), look again.
    noFireOfTested();

    // Recorded all the same: the readings in raw telemetry, the detector's alarm in `event`.
    const readings = await eventually('the tested detector\'s readings in InfluxDB', async () => {
      const s = await influxQuery(url, database, `SELECT "smoke_obscuration_pct_per_m" FROM "raw"."telemetry" WHERE "device" = '${tested}'`);
      const values = s.flatMap((x) => x.values.map((v) => v[1]));
      return values.length >= 3 ? values : undefined;
    });
    expect(readings).toEqual([6, 8, 8]);
    const events = await eventually('the tested detector\'s alarm event in InfluxDB', async () => {
      const s = await influxQuery(url, database, `SELECT * FROM "event" WHERE "device" = '${tested}' AND "type" = 'detector_alarm'`);
      const rows = s.flatMap((x) => x.values);
      return rows.length > 0 ? rows : undefined;
    });
    expect(events).toHaveLength(1);

    nothingOfH01(staff2);
  }, 120_000);
});
