import mqtt, { type MqttClient } from 'mqtt';
import { io as connectClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentMessage } from '../../contract/incidents.ts';
import type { ClientToServerEvents, IncidentResult, ServerToClientEvents } from '../../contract/socket-events.ts';
import { FILTERS } from '../../contract/topics.ts';
import { Value } from '@sinclair/typebox/value';
import { influxQuery } from '../support/influx-db.ts';
import { startPipeline, until, type Pipeline } from './support/pipeline.ts';

/**
 * Issue 11 through the running pipeline (real broker, real MQTT devices, real rules, real sockets):
 * a fire spreading from a bedroom to the corridor and the next room is one incident, acknowledged
 * once, and the bureau's socket sees one incident; integrations get it on the incidents topic.
 */
type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
interface IncidentWatcher {
  socket: Client;
  incidents: IncidentMessage[];
  snapshot: IncidentMessage[] | undefined;
}

let p: Pipeline;
let integration: MqttClient;
const published: IncidentMessage[] = [];
const S = 1000;

async function watchIncidents(username: string): Promise<IncidentWatcher> {
  const socket: Client = connectClient(`http://127.0.0.1:${p.alerts.port}`, { auth: { token: await p.token(username) }, transports: ['websocket'], reconnection: false });
  const w: IncidentWatcher = { socket, incidents: [], snapshot: undefined };
  socket.on('incidents', (s) => (w.snapshot = s));
  socket.on('incident', (i) => w.incidents.push(i));
  await until(() => w.snapshot !== undefined, `${username} incidents snapshot`);
  return w;
}

beforeAll(async () => {
  p = await startPipeline('it_incident');
  integration = await mqtt.connectAsync(p.mqttUrl, { clientId: 'svc-integration', username: 'svc-integration', password: 'demo-svc-integration', protocolVersion: 4, reconnectPeriod: 0 });
  await integration.subscribeAsync(FILTERS.incidents, { qos: 1 });
  integration.on('message', (_topic, payload) => published.push(JSON.parse(payload.toString()) as IncidentMessage));
});
afterAll(async () => {
  await integration.endAsync(true).catch(() => undefined);
  await p.close();
});

describe('one fire, one incident', () => {
  it('a fire spreading bedroom → corridor → next room is one incident, acknowledged once, one incident at the bureau', async () => {
    const staff = await watchIncidents('staff-h01');
    const bureau = await watchIncidents('bureau');
    const other = await watchIncidents('staff-h02');
    // r101 (bedroom) → f1-corridor → r102 (the next room), each detector's own alarm, 10 s apart.
    for (const id of ['h01-sd-r101', 'h01-sd-f1-corridor', 'h01-sd-r102']) {
      const sd = await p.device(id);
      await sd.event('detector_alarm');
      p.clock.advance(10 * S);
    }
    const members = p.alerts.lifecycle.open().filter((a) => a.homeId === 'h01' && a.category === 'fire');
    expect(new Set(members.map((a) => a.roomId))).toEqual(new Set(['r101', 'f1-corridor', 'r102']));
    const ids = new Set(members.map((a) => a.incidentId));
    expect(ids.size).toBe(1);
    const incidentId = [...ids][0]!;
    const incident = await until(() => bureau.incidents.filter((i) => i.id === incidentId).at(-1)?.roomIds.length === 3 && bureau.incidents.filter((i) => i.id === incidentId).at(-1), 'the spread at the bureau');
    expect(incident).toMatchObject({ kind: 'fire', homeId: 'h01', roomIds: ['r101', 'f1-corridor', 'r102'], escalationLevel: 2, severity: 'critical' });
    expect(incident.points[0]).toMatchObject({ deviceId: 'h01-sd-r101', rule: 'fire_confirmed' });
    expect(incident.firstAlertId).toBe(incident.points[0]!.alertId);
    expect(Value.Check(IncidentMessage, incident)).toBe(true);
    expect(new Set(bureau.incidents.map((i) => i.id))).toEqual(new Set([incidentId]));
    expect(other.incidents.some((i) => i.homeId !== 'h02')).toBe(false);
    // One incident, one GB 50440 delivery fact at the bureau (on the manual clock: at once).
    expect(p.alerts.lifecycle.incident(incidentId)?.bureauPushedAt).toBe(p.alerts.lifecycle.incident(incidentId)?.openedAt);

    const ack = await new Promise<IncidentResult>((r) => staff.socket.emit('ackIncident', incidentId, r));
    expect(ack).toMatchObject({ ok: true, incident: { id: incidentId, state: 'acknowledged', acknowledgedBy: 'staff-h01' } });
    for (const a of members) expect(p.alerts.lifecycle.get(a.id)).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'staff-h01' });
    await until(() => bureau.incidents.some((i) => i.id === incidentId && i.state === 'acknowledged'), 'the acknowledgement at the bureau');
    const trail = p.alerts.lifecycle.incidentAudit(incidentId) ?? [];
    expect(trail.filter((e) => e.action === 'acknowledged')).toHaveLength(1);
    expect(trail.filter((e) => e.action === 'escalated')).toHaveLength(1);

    // Integrations: every incident change on carewatch/v1/h01/incidents, QoS 1.
    await until(() => published.some((i) => i.id === incidentId && i.state === 'acknowledged'), 'incident on MQTT');
    // (Other homes' device incidents are published too: every device of the demo site is silent here.)
    const fires = published.filter((i) => i.kind === 'fire');
    expect(new Set(fires.map((i) => i.id))).toEqual(new Set([incidentId]));
    const versions = fires.map((i) => i.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));

    // And it is stored: the incident and its audit in InfluxDB.
    await p.alerts.drained();
    const rows = await influxQuery(p.influx.url, p.influx.database, `SELECT "version" FROM "incident" WHERE "incident_id" = '${incidentId}'`);
    expect(rows[0]?.values.map((v) => v[1])).toEqual(versions.filter((v, i) => versions.indexOf(v) === i));
    for (const w of [staff, bureau, other]) w.socket.close();
  });
});
