import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Alerts } from '../../../alerts/alerts.ts';
import { testInflux } from '../../support/influx-db.ts';
import { startAlerts, tempDir, until } from '../support/harness.ts';

/**
 * Clients that hold the alerts HTTP server's connections without finishing a request or reading an
 * answer, against a real alerts process on a real socket (session 21's hunt: fastify 5 sets no
 * request or idle timeout, so 600 such connections were held for as long as the clients liked, 6.5 MB
 * each for a client that pipelined 50 GETs of the socket.io client and never read them, no login
 * needed). The bounds are shortened here to 1 s; production's are alerts/http/app.ts HTTP_TIMEOUTS.
 */
let alerts: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;
const sockets: Socket[] = [];

beforeAll(async () => {
  dir = await tempDir();
  const influx = testInflux('alerts_slow_http');
  alerts = await startAlerts({ influx, stateDir: dir.path, httpTimeouts: { requestMs: 1_000, idleMs: 1_000 } });
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await alerts?.close();
  await dir?.remove();
});

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(alerts.port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
    sockets.push(s);
  });
}
const held = (): Promise<number> => new Promise((resolve, reject) => alerts.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

it('closes a connection whose request body never completes (a byte now and then keeps it busy, not finished)', async () => {
  const base = await held();
  const s = await open();
  s.on('data', () => undefined);
  s.write('POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"username":"');
  const drip = setInterval(() => s.writable && s.write('a'), 300);
  try {
    await until(async () => (await held()) === base || undefined, 'the connection closed by the server', 45_000);
  } finally {
    clearInterval(drip);
  }
  expect(await held()).toBe(base);
}, 60_000);

it('closes a connection that sent requests and reads none of the answers', async () => {
  const base = await held();
  const s = await open();
  s.pause();
  s.write('GET /socket.io/socket.io.js HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(50));
  await until(async () => (await held()) === base || undefined, 'the connection closed by the server', 20_000);
  expect(await held()).toBe(base);
}, 30_000);
