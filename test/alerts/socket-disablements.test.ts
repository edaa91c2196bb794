import { io as connectClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { Disablement, DisablementRequest } from '../../contract/incidents.ts';
import type { ClientToServerEvents, DisablementResult, ServerToClientEvents } from '../../contract/socket-events.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { testInflux } from '../support/influx-db.ts';
import { loginToken, startAlerts, tempDir, until } from './support/harness.ts';

/** Issue 11 over socket.io: the `disablements` list per user, and `disable` / `enable` with the REST role checks. */
type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
interface Seen {
  readonly socket: Client;
  /** Every `disablements` list received, in order. */
  readonly lists: Disablement[][];
}

const clock = createManualClock();
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
const clients: Client[] = [];
const MIN = 60_000;

async function connect(username: string, node: Alerts = alerts): Promise<Seen> {
  const token = await loginToken(node, username);
  const socket: Client = connectClient(`http://127.0.0.1:${node.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  clients.push(socket);
  const seen: Seen = { socket, lists: [] };
  socket.on('disablements', (l) => seen.lists.push(l));
  await until(() => seen.lists.length > 0, `${username} disablements on connect`);
  return seen;
}

function disable(s: Seen, request: unknown): Promise<DisablementResult> {
  return new Promise((resolve) => s.socket.emit('disable', request as DisablementRequest, resolve));
}
function enable(s: Seen, id: unknown): Promise<DisablementResult> {
  return new Promise((resolve) => s.socket.emit('enable', id as string, resolve));
}
const ids = (l: Disablement[] | undefined): string[] => (l ?? []).map((d) => d.id);

beforeAll(async () => {
  dir = await tempDir();
  alerts = await startAlerts({ influx: testInflux('disable_sock'), stateDir: dir.path, clock });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await alerts.close();
  await dir.remove();
});

describe('socket.io disablements', () => {
  let staff1: Seen;
  let director1: Seen;
  let staff2: Seen;
  let bureau: Seen;
  let created: Disablement;

  it('every user gets the list they may see on connect (empty at first)', async () => {
    [staff1, director1, staff2, bureau] = await Promise.all(['staff-h01', 'director-h01', 'staff-h02', 'bureau'].map((u) => connect(u))) as [Seen, Seen, Seen, Seen];
    for (const s of [staff1, director1, staff2, bureau]) expect(s.lists).toEqual([[]]);
  });

  it('staff and bureau may not disable; a malformed request is refused with its reason', async () => {
    const req = { scope: 'device', targetId: 'h01-sd-r103', mode: 'test', reason: 'detector test', durationMin: 45 };
    expect(await disable(staff1, req)).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    expect(await disable(bureau, req)).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    expect(await disable(director1, { ...req, extra: 1 })).toMatchObject({ ok: false, code: 'API_BAD_REQUEST' });
    expect(await disable(director1, 'nonsense')).toMatchObject({ ok: false, code: 'API_BAD_REQUEST' });
    // Another home's device answers exactly like an unknown one (HOME_NOT_FOUND told them apart before session 22).
    for (const who of [director1, staff1]) {
      const other = JSON.stringify(await disable(who, { ...req, targetId: 'h02-sd-r103' }));
      expect(other.replace('h02-sd-r103', 'h99-sd-r103')).toBe(JSON.stringify(await disable(who, { ...req, targetId: 'h99-sd-r103' })));
      expect(JSON.parse(other)).toMatchObject({ ok: false, code: 'DISABLEMENT_TARGET_NOT_FOUND' });
    }
    expect(alerts.disablements.inForce()).toEqual([]);
  });

  it("the director disables a detector: the home room and the bureau get the new list, another home's staff nothing", async () => {
    const r = await disable(director1, { scope: 'device', targetId: 'h01-sd-r103', mode: 'test', reason: 'detector test', durationMin: 45 });
    if (!r.ok) throw new Error(r.code);
    created = r.disablement;
    expect(created).toMatchObject({ homeId: 'h01', targetId: 'h01-sd-r103', by: 'director-h01', until: clock.now() + 45 * MIN });
    await until(() => staff1.lists.length === 2 && bureau.lists.length === 2 && director1.lists.length === 2, 'lists after disable');
    expect(ids(staff1.lists[1])).toEqual([created.id]);
    expect(ids(bureau.lists[1])).toEqual([created.id]);
    expect(staff2.lists).toHaveLength(1);
  });

  it('a user connecting later gets the disablements in force', async () => {
    const late = await connect('staff-h01');
    expect(ids(late.lists[0])).toEqual([created.id]);
    const other = await connect('staff-h02');
    expect(other.lists[0]).toEqual([]);
  });

  it('staff and bureau may not enable; the director ends it and everyone sees it gone', async () => {
    expect(await enable(staff1, created.id)).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    expect(await enable(bureau, created.id)).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    expect(await enable(staff2, created.id)).toMatchObject({ ok: false, code: 'DISABLEMENT_NOT_FOUND' });
    expect(await enable(director1, 42)).toMatchObject({ ok: false, code: 'API_BAD_REQUEST' });
    const r = await enable(director1, created.id);
    expect(r).toMatchObject({ ok: true, disablement: { id: created.id, endedBy: 'director-h01', endedAt: clock.now() } });
    await until(() => staff1.lists.length === 3 && bureau.lists.length === 3, 'lists after enable');
    expect(staff1.lists[2]).toEqual([]);
    expect(bureau.lists[2]).toEqual([]);
  });

  it('one that ends by itself reaches the sockets too', async () => {
    const r = await disable(director1, { scope: 'home', targetId: 'h01', mode: 'disabled', reason: 'panel replacement', durationMin: 10 });
    if (!r.ok) throw new Error(r.code);
    await until(() => bureau.lists.length === 4, 'list after the second disable');
    clock.advance(10 * MIN);
    await until(() => bureau.lists.length === 5 && staff1.lists.length === 5, 'list after expiry');
    expect(bureau.lists[4]).toEqual([]);
    expect(staff1.lists[4]).toEqual([]);
  });
});

describe('partitioned by home (issue 14)', () => {
  it("a node that does not own the home refuses a disablement, as REST does: its copy would suppress nothing on the owner", async () => {
    // Node b owns h02 only; the director of h01 reached it (a web node behind a balancer).
    const b = await startAlerts({ influx: testInflux('disable_sock'), stateDir: `${dir.path}/b`, clock, config: { homes: 'h02', instance: 'b' } });
    try {
      const director = await connect('director-h01', b);
      const req = { scope: 'device', targetId: 'h01-sd-r103', mode: 'disabled', reason: 'detector swap', durationMin: 30 };
      expect(await disable(director, req)).toMatchObject({ ok: false, code: 'CLUSTER_NOT_OWNER' });
      expect(await disable(director, { ...req, scope: 'home', targetId: 'h01' })).toMatchObject({ ok: false, code: 'CLUSTER_NOT_OWNER' });
      expect(b.disablements.visibleTo({ username: 'bureau', role: 'bureau' })).toEqual([]);
      // The owner's director on the owner's node still may (h02 on b).
      const own = await disable(await connect('director-h02', b), { ...req, targetId: 'h02-sd-r103' });
      expect(own).toMatchObject({ ok: true, disablement: { homeId: 'h02' } });
    } finally {
      await b.close();
    }
  });
});
