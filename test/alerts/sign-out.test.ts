import { Redis } from 'ioredis';
import { io as connectClient, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientToServerEvents, ServerToClientEvents } from '../../contract/socket-events.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { createTokenService, MAX_REVOCATIONS, MAX_REVOCATIONS_PER_USER } from '../../alerts/http/token.ts';
import { testInflux } from '../support/influx-db.ts';
import { useRedisServer } from '../support/redis-server.ts';
import { loginToken, startAlerts, tempDir, until } from './support/harness.ts';

/**
 * Server-side sign-out (alerts/sign-out.ts, POST /api/logout). Before it the page only forgot its
 * token; the token stayed good for its 12 h wherever it had been copied, and a page open with it
 * elsewhere stayed live. One staff account is open at several desks of a home at once: signing out
 * at one must end that session only, never the nurse's at the other desk.
 */
type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
const clients: Client[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const c of closers.splice(0).reverse()) await c();
});

/** A page's live connection with this token; whether the server ended it, and how a new one fares. */
async function page(alerts: Alerts, token: string): Promise<{ ended: () => boolean }> {
  const socket: Client = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  clients.push(socket);
  let reason: string | undefined;
  let snapshot = false;
  socket.on('snapshot', () => (snapshot = true));
  socket.on('disconnect', (r) => (reason = r));
  await until(() => snapshot, 'the snapshot');
  return { ended: () => reason === 'io server disconnect' };
}

/** Whether a new page with this token is let in (false: AUTH_REQUIRED at the handshake). */
async function admitted(alerts: Alerts, token: string): Promise<boolean> {
  const socket: Client = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  clients.push(socket);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('connect_error', (err) => resolve(err.message === 'AUTH_REQUIRED' ? false : true));
  });
}

const me = async (alerts: Alerts, token: string): Promise<number> => (await alerts.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })).statusCode;
const logout = async (alerts: Alerts, token: string): Promise<number> => (await alerts.app.inject({ method: 'POST', url: '/api/logout', headers: { authorization: `Bearer ${token}` } })).statusCode;

describe('sign-out on one web node', () => {
  it('ends that token everywhere on the node (REST, its open page, new pages) and not the same user at another desk, across a restart', async () => {
    const dir = await tempDir();
    closers.push(() => dir.remove());
    const influx = testInflux('alerts_signout');
    let alerts = await startAlerts({ influx, stateDir: dir.path });
    let open = true;
    closers.push(() => (open ? alerts.close() : Promise.resolve()));
    const deskA = await loginToken(alerts, 'staff-h01');
    const deskB = await loginToken(alerts, 'staff-h01');
    expect(deskA).not.toBe(deskB);
    const pageA = await page(alerts, deskA);
    const pageB = await page(alerts, deskB);

    expect(await logout(alerts, deskA)).toBe(204);
    await until(() => pageA.ended(), "desk A's page ended by the server");
    expect(await me(alerts, deskA)).toBe(401);
    expect(await admitted(alerts, deskA)).toBe(false);
    // A second sign-out of the same token: it is no longer valid.
    expect(await logout(alerts, deskA)).toBe(401);
    // Desk B, same account: untouched.
    expect(pageB.ended()).toBe(false);
    expect(await me(alerts, deskB)).toBe(200);

    // A restart does not bring the signed-out token back (the state directory keeps the list).
    for (const c of clients.splice(0)) c.close();
    await alerts.close();
    open = false;
    alerts = await startAlerts({ influx, stateDir: dir.path });
    open = true;
    expect(await me(alerts, deskA)).toBe(401);
    expect(await me(alerts, deskB)).toBe(200);
    expect(await logout(alerts, 'not-a-token')).toBe(401);
  }, 60_000);
});

describe('sign-out across web nodes (socket.io cluster on a real Redis)', () => {
  const redis = useRedisServer();

  it('a token signed out on node a is refused on node b and its page there is ended', async () => {
    const influx = testInflux('alerts_signout_cluster');
    const nodes: Alerts[] = [];
    for (const name of ['a', 'b']) {
      const dir = await tempDir(`alerts-signout-${name}-`);
      closers.push(() => dir.remove());
      const n = await startAlerts({ influx, stateDir: dir.path, config: { redisUrl: redis.url } });
      closers.push(() => n.close());
      nodes.push(n);
    }
    const [a, b] = nodes as [Alerts, Alerts];
    const token = await loginToken(a, 'staff-h01');
    const other = await loginToken(b, 'staff-h01');
    const onB = await page(b, token);
    const otherOnB = await page(b, other);
    expect(await me(b, token)).toBe(200);

    expect(await logout(a, token)).toBe(204);
    await until(() => onB.ended(), 'the page on node b ended');
    expect(await me(b, token)).toBe(401);
    expect(await admitted(b, token)).toBe(false);
    expect(otherOnB.ended()).toBe(false);
    expect(await me(b, other)).toBe(200);

    // A web node that was not there to hear the broadcast (started now, with a state directory of
    // its own) reads the sign-outs the nodes keep in Redis.
    const dir = await tempDir('alerts-signout-c-');
    closers.push(() => dir.remove());
    const c = await startAlerts({ influx, stateDir: dir.path, config: { redisUrl: redis.url } });
    closers.push(() => c.close());
    await until(async () => (await me(c, token)) === 401, 'node c refuses the token signed out before it started');
    expect(await me(c, other)).toBe(200);
  }, 60_000);

  it("a node whose Redis subscriber was lost reads, once it is back, the sign-outs it may have missed", async () => {
    const influx = testInflux('alerts_signout_resub');
    const dir = await tempDir('alerts-signout-r-');
    closers.push(() => dir.remove());
    const node = await startAlerts({ influx, stateDir: dir.path, config: { redisUrl: redis.url } });
    closers.push(() => node.close());
    const login = await node.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'staff-h03', password: 'demo-staff-h03' } });
    const { token, expiresAt } = login.json() as { token: string; expiresAt: number };
    const db = new Redis(redis.url);
    closers.push(async () => db.disconnect());
    // Another node's sign-out whose broadcast this node never heard: only its key in Redis.
    await db.set(`carewatch:signed-out:${token.slice(token.indexOf('.') + 1)}`, JSON.stringify({ exp: expiresAt, sub: 'staff-h03' }), 'PX', 600_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(await me(node, token)).toBe(200);
    // Its subscriber connection is cut (the adapter's: the only one in pub/sub mode) and comes back.
    await db.client('KILL', 'TYPE', 'pubsub');
    await until(async () => (await me(node, token)) === 401, 'the node refuses the token once its subscriber is back');
  }, 60_000);
});

describe('the token service', () => {
  const secret = 'a-test-secret-of-at-least-32-characters';
  const actor = { username: 'staff-h01', role: 'staff' as const, homeId: 'h01' };

  it('refuses a revoked token until its expiry, forgets it then, and takes a kept list back', () => {
    const t = createTokenService(secret, 60);
    const { token } = t.issue(actor, 1_000);
    const other = t.issue(actor, 1_000).token;
    // Kept until every token of that login could have expired: one renewed just now lives a lifetime.
    const expiresAt = 2_000 + 60_000;
    expect(t.revoke(token, 2_000)?.revocation.exp).toBe(expiresAt);
    expect(t.verify(token, 2_000)).toBeUndefined();
    expect(t.verify(other, 2_000)).toMatchObject({ username: 'staff-h01' });
    const kept = t.revocations(2_000);
    expect(kept).toHaveLength(1);
    expect(t.revocations(expiresAt)).toEqual([]);

    // Another process with the same secret (a restart) refuses it once given the list.
    const again = createTokenService(secret, 60);
    expect(again.verify(token, 2_000)).toBeDefined();
    again.restore(kept, 2_000);
    expect(again.verify(token, 2_000)).toBeUndefined();
    // An expired entry is not taken back.
    const later = createTokenService(secret, 60);
    later.restore(kept, expiresAt);
    expect(later.revocations(expiresAt)).toEqual([]);
  });

  it(`keeps at most ${MAX_REVOCATIONS_PER_USER} revocations per user, so no account can push out another's, and ${MAX_REVOCATIONS} in all`, () => {
    const t = createTokenService(secret, 60);
    // Someone else's sign-out, the soonest of all to expire.
    expect(t.restore([{ id: 'nurse', exp: 6_000, sub: 'staff-h02' }], 0).evicted).toBe(0);
    // One account looping login and logout: only its own oldest are forgotten.
    let evicted = 0;
    for (let i = 0; i < MAX_REVOCATIONS_PER_USER + 5; i++) evicted += t.revoke(t.issue(actor, 5_000 + i).token, 5_000 + i)?.evicted ?? 0;
    expect(evicted).toBe(5);
    const kept = t.revocations(5_000);
    expect(kept.filter((r) => r.sub === 'staff-h01')).toHaveLength(MAX_REVOCATIONS_PER_USER);
    expect(kept.some((r) => r.id === 'nurse')).toBe(true);
    // Many accounts at it together: the site's soonest to expire goes past the total.
    const many = Array.from({ length: MAX_REVOCATIONS }, (_, i) => ({ id: `id${i}`, exp: 10_000 + i, sub: `u${i % 1_000}` }));
    expect(t.restore(many, 0).evicted).toBe(MAX_REVOCATIONS_PER_USER + 1);
    expect(t.revocations(0)).toHaveLength(MAX_REVOCATIONS);
    expect(t.revocations(0).some((r) => r.id === 'nurse')).toBe(false);
  });
});
