import { io as connectClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { IncidentMessage } from '../../contract/incidents.ts';
import type { ClientToServerEvents, IncidentResult, ServerToClientEvents } from '../../contract/socket-events.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { loginToken, startAlerts, tempDir, until } from './support/harness.ts';

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
interface Seen {
  socket: Client;
  order: string[];
  incidents: IncidentMessage[] | undefined;
  live: IncidentMessage[];
}

const clock = createManualClock();
const registry = demoRegistry();
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
const clients: Client[] = [];

async function connect(username: string): Promise<Seen> {
  const token = await loginToken(alerts, username);
  const socket: Client = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  clients.push(socket);
  const seen: Seen = { socket, order: [], incidents: undefined, live: [] };
  socket.on('snapshot', () => seen.order.push('snapshot'));
  socket.on('incidents', (list) => {
    seen.order.push('incidents');
    seen.incidents = list;
  });
  socket.on('incident', (i) => seen.live.push(i));
  await until(() => seen.incidents !== undefined, `${username} incidents`);
  return seen;
}

function telemetry(deviceId: string, metrics: Record<string, number>): RuleInput {
  const now = clock.now();
  return { type: 'telemetry', now, device: registry.device(deviceId)!, ts: now, receivedTs: now, metrics };
}

const call = <T>(fn: (reply: (r: T) => void) => void): Promise<T> => new Promise<T>((resolve) => fn(resolve));

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('alerts_sock_incidents'), stateDir: dir.path, clock });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await alerts.close();
  await dir.remove();
});

describe('socket.io incidents (issue 11)', () => {
  it('snapshot then incidents on connect; one incident per fire to the home and the bureau; ack once over a socket', async () => {
    alerts.handleInput(telemetry('h01-sd-r101', { smoke_obscuration_pct_per_m: 20 })); // open before anyone connects
    const staff1 = await connect('staff-h01');
    const staff2 = await connect('staff-h02');
    const bureau = await connect('bureau');
    expect(staff1.order).toEqual(['snapshot', 'incidents']);
    expect(staff1.incidents?.map((i) => [i.kind, i.roomIds])).toEqual([['fire', ['r101']]]);
    expect(bureau.incidents?.map((i) => i.kind)).toEqual(['fire']);
    expect(staff2.incidents).toEqual([]);
    const id = staff1.incidents![0]!.id;
    // Delivered to a client on connect: the GB 50440 timing facts of the incident.
    expect(alerts.lifecycle.incident(id)).toMatchObject({ pushedAt: clock.now(), bureauPushedAt: clock.now() });

    alerts.handleInput(telemetry('h01-sd-f1-corridor', { smoke_obscuration_pct_per_m: 18 }));
    alerts.handleInput(telemetry('h01-sd-r105', { smoke_obscuration_pct_per_m: 16 }));
    alerts.handleInput(telemetry('h01-vs-p01', { spo2_pct: 85 })); // care: the home room only
    await until(() => staff1.live.filter((i) => i.kind === 'fire').at(-1)?.points.length === 3 && bureau.live.at(-1)?.points.length === 3 && staff1.live.some((i) => i.kind === 'care'), 'incident changes');
    expect(new Set(bureau.live.map((i) => i.id))).toEqual(new Set([id]));
    expect(staff1.live.filter((i) => i.kind === 'fire').map((i) => i.version)).toEqual([2, 3]);
    expect(staff2.live).toEqual([]);

    const denied = await call<IncidentResult>((r) => staff2.socket.emit('ackIncident', id, r));
    expect(denied).toMatchObject({ ok: false, code: 'INCIDENT_NOT_FOUND' });
    const bad = await call<IncidentResult>((r) => staff1.socket.emit('confirmIncident', id, 'maybe' as 'test', '', r));
    expect(bad).toMatchObject({ ok: false, code: 'API_BAD_REQUEST' });
    const ack = await call<IncidentResult>((r) => staff1.socket.emit('ackIncident', id, r));
    expect(ack).toMatchObject({ ok: true, incident: { id, state: 'acknowledged', acknowledgedBy: 'staff-h01', version: 4 } });
    await until(() => [staff1, bureau].every((s) => s.live.some((i) => i.id === id && i.version === 4)), 'ack everywhere');
    expect(alerts.lifecycle.open().filter((a) => a.incidentId === id).map((a) => a.state)).toEqual(['acknowledged', 'acknowledged', 'acknowledged']);
    const confirm = await call<IncidentResult>((r) => staff1.socket.emit('confirmIncident', id, 'test', 'drill', r));
    expect(confirm).toMatchObject({ ok: true, incident: { confirmation: 'test' } });
    const resolve = await call<IncidentResult>((r) => staff1.socket.emit('resolveIncident', id, 'reset', r));
    expect(resolve).toMatchObject({ ok: true, incident: { state: 'resolved' } });
    await until(() => bureau.live.some((i) => i.id === id && i.state === 'resolved'), 'resolved at the bureau');
  });

  it('a care incident reaches the bureau room once escalated to the bureau level', async () => {
    const bureau = await connect('admin');
    const care = alerts.lifecycle.openIncidents().find((i) => i.kind === 'care')!;
    expect(bureau.incidents?.some((i) => i.id === care.id)).toBe(false);
    clock.advance(900_000); // high severity: director at 5 min, bureau at 15 min
    await until(() => bureau.live.some((i) => i.id === care.id && i.escalationLevel === 2), 'care incident at the bureau');
    expect(bureau.live.filter((i) => i.id === care.id).every((i) => (i.escalationLevel ?? 0) >= 2)).toBe(true);
  });
});
