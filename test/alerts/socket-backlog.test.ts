import type { Socket as NetSocket } from 'node:net';
import { io as connectClient, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_SOCKET_BACKLOG_PACKETS } from '../../alerts/socket.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { createManualClock } from '../../common/clock.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../contract/socket-events.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { loginToken, startAlerts, tempDir, until } from './support/harness.ts';

/**
 * A page that stays connected but stops reading, with a real alerts process and real socket.io
 * clients (session 21's hunt): every alert change was queued for it in engine.io's write buffer
 * without bound (~6.7 KB each), and a client that answers pings is never timed out. The hub now closes
 * a page whose backlog passes MAX_SOCKET_BACKLOG_PACKETS; a page that reads is untouched.
 */
const clock = createManualClock();
const registry = demoRegistry();
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('alerts_backlog'), stateDir: dir.path, clock });
});
afterAll(async () => {
  await alerts?.close();
  await dir?.remove();
});

function spo2(deviceId: string, v: number): RuleInput {
  const now = clock.now();
  return { type: 'telemetry', now, device: registry.device(deviceId)!, ts: now, receivedTs: now, metrics: { spo2_pct: v } };
}

/** A socket.io v4 client over a raw websocket: authenticates, answers pings, then stops reading. */
async function frozenPage(token: string): Promise<{ ws: WebSocket }> {
  const ws = new WebSocket(`ws://127.0.0.1:${alerts.port}/socket.io/?EIO=4&transport=websocket`);
  let connected = false;
  ws.on('error', () => undefined);
  ws.on('message', (data) => {
    const s = String(data);
    if (s.startsWith('0')) ws.send(`40${JSON.stringify({ token })}`);
    else if (s === '2') ws.send('3');
    else if (s.startsWith('40')) connected = true;
  });
  await until(() => connected || undefined, 'the frozen page connected');
  (ws as unknown as { _socket: NetSocket })._socket.pause();
  return { ws };
}

it('closes a page that does not read what it is sent, and only that one; the reading page goes on getting alarms', async () => {
  const token = await loginToken(alerts, 'staff-h01');
  const frozen = await frozenPage(token);
  const healthy: Socket<ServerToClientEvents, ClientToServerEvents> = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  const seen: AlertMessage[] = [];
  healthy.on('alert', (a) => seen.push(a));
  try {
    await until(() => healthy.connected || undefined, 'the healthy page connected');
    // Alert changes for h01 until the frozen page's backlog is over the bound: the kernel's buffers
    // take the first few MB, then engine.io queues. The check runs every 2 s on the hub's clock.
    const monitors = ['h01-vs-p01', 'h01-vs-p02', 'h01-vs-p03'];
    for (let round = 0; round < 200 && alerts.stats().socketsClosedForBacklog === 0; round++) {
      for (let i = 0; i < 100; i++) for (const m of monitors) alerts.handleInput(spo2(m, i % 2 === 0 ? 85 : 97));
      await new Promise((r) => setImmediate(r));
      clock.advance(2_000);
    }
    expect(alerts.stats().socketsClosedForBacklog).toBe(1);
    // Gone on the server at once (its connection cut, not waiting for a close frame it would never read).
    await until(() => alerts.stats().sockets === 1 || undefined, 'the frozen page gone from the server');
    // The page that reads was never over the bound, and still gets what follows.
    expect(healthy.connected).toBe(true);
    const before = seen.length;
    alerts.handleInput(spo2('h01-vs-p01', 80));
    await until(() => seen.length > before || undefined, 'a change after it on the healthy page');
    expect(MAX_SOCKET_BACKLOG_PACKETS).toBeGreaterThan(100);
  } finally {
    healthy.close();
    frozen.ws.terminate();
  }
}, 120_000);
