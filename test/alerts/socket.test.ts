import { io as connectClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import type { AckResult, ClientToServerEvents, ServerToClientEvents } from '../../contract/socket-events.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { loginToken, startAlerts, tempDir, until } from './support/harness.ts';

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
interface Seen {
  socket: Client;
  snapshot: AlertMessage[] | undefined;
  alerts: AlertMessage[];
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
  const seen: Seen = { socket, snapshot: undefined, alerts: [] };
  socket.on('snapshot', (s) => (seen.snapshot = s));
  socket.on('alert', (a) => seen.alerts.push(a));
  await until(() => seen.snapshot !== undefined, `${username} snapshot`);
  return seen;
}

function telemetry(deviceId: string, metrics: Record<string, number>): RuleInput {
  const now = clock.now();
  return { type: 'telemetry', now, device: registry.device(deviceId)!, ts: now, receivedTs: now, metrics };
}

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('alerts_sock'), stateDir: dir.path, clock });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await alerts.close();
  await dir.remove();
});

describe('socket.io', () => {
  it('refuses a connection without a valid token', async () => {
    const socket: Client = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token: 'forged.token' }, transports: ['websocket'], reconnection: false });
    clients.push(socket);
    const err = await new Promise<Error>((resolve) => socket.on('connect_error', resolve));
    expect(err.message).toBe('AUTH_REQUIRED');
  });

  it('delivers alerts to their home room and fire alerts to the bureau; ack over a socket reaches everyone', async () => {
    alerts.handleInput(telemetry('h01-sd-r102', { smoke_obscuration_pct_per_m: 20 })); // open before anyone connects
    const staff1 = await connect('staff-h01');
    const director1 = await connect('director-h01');
    const staff2 = await connect('staff-h02');
    const bureau = await connect('bureau');
    expect(staff1.snapshot?.map((a) => a.deviceId)).toEqual(['h01-sd-r102']);
    expect(bureau.snapshot?.map((a) => a.deviceId)).toEqual(['h01-sd-r102']);
    expect(staff2.snapshot).toEqual([]);

    alerts.handleInput(telemetry('h01-sd-r101', { smoke_obscuration_pct_per_m: 15 }));
    alerts.handleInput(telemetry('h01-vs-p01', { spo2_pct: 85 })); // care: home room only
    alerts.handleInput(telemetry('h02-vs-p01', { spo2_pct: 84 }));
    await until(() => staff2.alerts.length === 1 && staff1.alerts.length === 2 && bureau.alerts.length === 1 && director1.alerts.length === 2, 'alerts');
    expect(staff1.alerts.map((a) => [a.rule, a.state])).toEqual([
      ['test_smoke', 'raised'],
      ['test_spo2', 'raised'],
    ]);
    expect(staff2.alerts.map((a) => [a.homeId, a.rule])).toEqual([['h02', 'test_spo2']]);
    expect(bureau.alerts.map((a) => [a.homeId, a.category])).toEqual([['h01', 'fire']]);

    const fire = staff1.alerts[0]!;
    const result = await new Promise<AckResult>((resolve) => staff1.socket.emit('ack', fire.id, resolve));
    expect(result).toMatchObject({ ok: true, alert: { id: fire.id, state: 'acknowledged', acknowledgedBy: 'staff-h01', version: 2 } });
    await until(() => [staff1, director1, bureau].every((s) => s.alerts.some((a) => a.id === fire.id && a.version === 2)), 'ack everywhere');

    // Another home's staff cannot act on it either (same authorisation as the API).
    const denied = await new Promise<AckResult>((resolve) => staff2.socket.emit('resolve', fire.id, 'x', resolve));
    expect(denied).toMatchObject({ ok: false, code: 'ALERT_NOT_FOUND' });
    const bad = await new Promise<AckResult>((resolve) => staff1.socket.emit('confirm', fire.id, 'maybe' as 'test', '', resolve));
    expect(bad).toMatchObject({ ok: false, code: 'API_BAD_REQUEST' });
    expect(staff2.alerts.some((a) => a.homeId !== 'h02')).toBe(false);
  });

  it('sends an escalated care alert to the bureau room too', async () => {
    const bureau = await connect('admin');
    const open = alerts.lifecycle.open().find((a) => a.homeId === 'h02' && a.category === 'care')!;
    clock.advance(900_000); // high severity: director at 5 min, bureau at 15 min
    await until(() => bureau.alerts.some((a) => a.id === open.id && a.escalationLevel === 2), 'escalation to bureau');
    expect(bureau.alerts.filter((a) => a.category === 'care').every((a) => (a.escalationLevel ?? 0) >= 2)).toBe(true);
  });
});
