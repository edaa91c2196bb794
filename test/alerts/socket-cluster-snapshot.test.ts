import { createServer, type Server as HttpServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { io as connectClient, type Socket as ClientSocket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import { testInflux } from '../support/influx-db.ts';
import { useRedisServer } from '../support/redis-server.ts';
import { demoRegistry } from '../support/registry.ts';
import { loginToken, startAlerts, tempDir, until } from './support/harness.ts';
// The page's own models (plain ESM, no DOM).
// @ts-expect-error plain JS
import { createAlertModel } from '../../dashboards/app/js/alert-model.js';
// @ts-expect-error plain JS
import { createIncidentModel } from '../../dashboards/app/js/incident-model.js';

/**
 * A web node's snapshot on a cluster (CAREWATCH_REDIS_URL) waits for the other nodes' part (up to
 * ~3.5 s). An alarm raised meanwhile went out live, then the snapshot (this node's part read at the
 * connect, without it) took it off the page; and a node that did not answer left its homes out of a
 * snapshot that did not say so, so the page dropped their open alarms. A real alerts node and a
 * second socket.io node on the same real Redis, playing a peer that is slow, or silent.
 */
interface Model { apply(a: unknown): void; mark(): number; replaceOpen(list: unknown[], keep?: (a: unknown) => boolean, since?: number): void; open(): Array<{ id: string; rule: string }> }

const clock = createManualClock();
const registry = demoRegistry();
const redis = useRedisServer();
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
let http: HttpServer;
let peerIo: Server;
let peerRedis: Redis[] = [];
let peerMode: 'slow' | 'silent' = 'slow';

function telemetry(deviceId: string, metrics: Record<string, number>): RuleInput {
  const now = clock.now();
  return { type: 'telemetry', now, device: registry.device(deviceId)!, ts: now, receivedTs: now, metrics };
}

/** A page's socket with the page's own models, fed as dashboards/app/js/main.js feeds them. */
function page(token: string): { socket: ClientSocket; model: Model; snapshots: Array<{ list: AlertMessage[]; meta: { partial?: boolean } }> } {
  const model = createAlertModel(() => {}) as Model;
  const incidents = createIncidentModel(() => {}) as Model;
  const snapshots: Array<{ list: AlertMessage[]; meta: { partial?: boolean } }> = [];
  const socket = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  let mark = 0;
  let incidentsMark = 0;
  socket.on('connect', () => {
    mark = model.mark();
    incidentsMark = incidents.mark();
  });
  socket.on('alert', (a: unknown) => model.apply(a));
  socket.on('incident', (i: unknown) => incidents.apply(i));
  socket.on('snapshot', (list: AlertMessage[], meta?: { partial?: boolean }) => {
    snapshots.push({ list, meta: meta ?? {} });
    model.replaceOpen(list, () => meta?.partial === true, mark);
  });
  socket.on('incidents', (list: unknown[], meta?: { partial?: boolean }) => incidents.replaceOpen(list, () => meta?.partial === true, incidentsMark));
  return { socket, model, snapshots };
}

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('snap_cluster'), stateDir: dir.path, clock, config: { redisUrl: redis.url } });
  const pub = new Redis(redis.url, { maxRetriesPerRequest: null });
  const sub = pub.duplicate();
  peerRedis = [pub, sub];
  http = createServer();
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  peerIo = new Server(http, { adapter: createAdapter(pub, sub, { key: 'carewatch-socket', requestsTimeout: 3000 }) });
  // The peer holds nothing; slow: it answers after 1.5 s (busy, a GC pause); silent: never (hung).
  peerIo.on('carewatch:open' as never, ((_token: unknown, reply: (x: unknown) => void) => {
    if (peerMode === 'slow') setTimeout(() => reply({ alerts: [], incidents: [] }), 1500);
  }) as never);
  await until(async () => (await pub.pubsub('NUMSUB', 'carewatch-socket#/#') as unknown[])[1] === 2 || (await pub.pubsub('NUMSUB', 'carewatch-socket-request#/#') as unknown[])[1] === 2, 'both nodes on Redis');
}, 60_000);

afterAll(async () => {
  await alerts?.close();
  peerIo?.close();
  for (const c of peerRedis) c.disconnect();
  await dir?.remove();
});

describe('a page\'s snapshot on a cluster', () => {
  it('does not take off the page an alarm raised while the snapshot waited for the other nodes', async () => {
    peerMode = 'slow';
    const token = await loginToken(alerts, 'staff-h01');
    const { socket, model, snapshots } = page(token);
    await until(() => socket.connected, 'connect');
    // A detector goes into alarm while the snapshot waits for the slow peer.
    alerts.handleInput(telemetry('h01-sd-r101', { smoke_obscuration_pct_per_m: 20 }));
    const raised = await until(() => alerts.lifecycle.open().find((a) => a.deviceId === 'h01-sd-r101'), 'the alarm');
    await until(() => snapshots.length > 0, 'the snapshot', 10_000);
    // The node's own part is read when the snapshot is sent (before: at the connect, without it).
    expect(snapshots[0]!.list.map((a) => a.id)).toContain(raised.id);
    expect(snapshots[0]!.meta.partial).toBe(false);
    expect(model.open().map((a) => a.id)).toContain(raised.id);
    socket.close();
  }, 30_000);

  it('marks a snapshot partial when a node does not answer, and the page keeps what it had', async () => {
    peerMode = 'silent';
    const token = await loginToken(alerts, 'staff-h01');
    const { socket, model, snapshots } = page(token);
    // What the page showed before this connection (say, of a home another node owns).
    const elsewhere = { id: 'alert-held-by-the-silent-node', homeId: 'h01', version: 3, state: 'raised', rule: 'x' };
    model.replaceOpen([elsewhere]);
    await until(() => snapshots.length > 0, 'the snapshot', 10_000);
    expect(snapshots[0]!.meta.partial).toBe(true);
    expect(model.open().map((a) => a.id)).toContain(elsewhere.id);
    socket.close();
  }, 30_000);
});

describe("the page's models", () => {
  it('keep what came live after a full list was asked for, and drop what did not', () => {
    for (const create of [createAlertModel, createIncidentModel]) {
      const m = create(() => {}) as Model;
      m.apply({ id: 'old', version: 1, state: 'raised' });
      const mark = m.mark();
      m.apply({ id: 'new', version: 1, state: 'raised' });
      // The list was asked for before `new` was raised: it has neither (`old` resolved meanwhile).
      m.replaceOpen([], () => false, mark);
      expect(m.open().map((x) => x.id)).toEqual(['new']);
      // A later full list without it (resolved while away) does remove it.
      m.replaceOpen([], () => false, m.mark());
      expect(m.open()).toEqual([]);
    }
  });
});
