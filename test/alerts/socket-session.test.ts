import { io as connectClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { AckResult, ClientToServerEvents, ServerToClientEvents } from '../../contract/socket-events.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { createTokenService } from '../../alerts/http/token.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { loginToken, startAlerts, tempDir, until } from './support/harness.ts';

/** A socket.io session lives no longer than its token, and no longer than its user in the registry. */
type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
const TTL_S = 600;
const clock = createManualClock();
const base = demoRegistry();
/** Users "deleted" from the registry while the process runs (an admin edit). */
const removed = new Set<string>();
const registry: RegistryIndex = { ...base, user: (u) => (removed.has(u) ? undefined : base.user(u)) };
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
const clients: Client[] = [];

async function connect(username: string): Promise<{ socket: Client; disconnected: () => boolean }> {
  const token = await loginToken(alerts, username);
  const socket: Client = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  clients.push(socket);
  let gone = false;
  let snapshot = false;
  socket.on('snapshot', () => (snapshot = true));
  socket.on('disconnect', () => (gone = true));
  await until(() => snapshot, `${username} snapshot`);
  return { socket, disconnected: () => gone };
}

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('alerts_sess'), stateDir: dir.path, clock, registry, tokenTtlS: TTL_S });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await alerts.close();
  await dir.remove();
});

describe('socket.io sessions', () => {
  it('disconnects a socket when its token expires', async () => {
    const s = await connect('staff-h01');
    clock.advance(TTL_S * 1000 - 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(s.disconnected()).toBe(false);
    clock.advance(1);
    await until(() => s.disconnected(), 'disconnect at expiry');
  });

  it('answers AUTH_REQUIRED to an event once the user is deleted from the registry, and the HTTP API refuses the token too', async () => {
    const token = await loginToken(alerts, 'staff-h02');
    const s = await connect('staff-h02');
    removed.add('staff-h02');
    const r = await new Promise<AckResult>((resolve) => s.socket.emit('ack', 'a-missing-alert', resolve));
    expect(r).toMatchObject({ ok: false, code: 'AUTH_REQUIRED' });
    await until(() => s.disconnected(), 'disconnect after the refusal');
    const me = await alerts.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(401);
    removed.delete('staff-h02');
  });

  it('refuses a token whose user moved to another home', async () => {
    const token = await loginToken(alerts, 'staff-h01');
    const moved: RegistryIndex = { ...registry, user: (u) => (u === 'staff-h01' ? { ...base.user(u)!, homeId: 'h02' } : base.user(u)) };
    // Same secret as the harness; only the registry differs.
    const tokens = createTokenService('a-test-secret-of-at-least-32-characters', TTL_S, moved);
    expect(tokens.verify(token, clock.now())).toBeUndefined();
    expect(createTokenService('a-test-secret-of-at-least-32-characters', TTL_S, registry).verify(token, clock.now())).toMatchObject({ username: 'staff-h01', homeId: 'h01' });
  });
});

describe('delivery to the bureau (GB 50440 / GB 26875)', () => {
  it('records bureauPushedAt only when a fire alarm reaches a non-empty bureau room', async () => {
    await connect('staff-h01');
    const now = clock.now();
    alerts.handleInput({ type: 'telemetry', now, device: base.device('h01-sd-r103')!, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: 30 } });
    const fire = alerts.lifecycle.open().find((a) => a.deviceId === 'h01-sd-r103')!;
    expect(alerts.lifecycle.get(fire.id)?.pushedAt).toBe(now); // a staff client got it
    expect(alerts.lifecycle.get(fire.id)?.bureauPushedAt).toBeUndefined(); // the centre did not
    clock.advance(2000);
    await connect('bureau'); // the snapshot carries it to the centre
    expect(alerts.lifecycle.get(fire.id)?.bureauPushedAt).toBe(now + 2000);
    expect(alerts.lifecycle.audit(fire.id)?.map((e) => e.action)).toContain('pushed_bureau');
    const token = await loginToken(alerts, 'bureau');
    const res = await alerts.app.inject({ url: `/api/alerts/${fire.id}`, headers: { authorization: `Bearer ${token}` } });
    expect(res.json()).toMatchObject({ timing: { pushedAt: now, bureauPushedAt: now + 2000, raisedToPushedMs: 2000 } });
  });
});
