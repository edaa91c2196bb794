import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { Device } from '../../contract/registry.ts';
import { deviceTopic, FILTERS } from '../../contract/topics.ts';
import { hasDemoRedisPassword } from '../../common/secrets.ts';
import { connect, connectRecording, json, startBroker, until } from '../broker/helpers.ts';
import { loginToken, startAlerts, tempDir } from '../alerts/support/harness.ts';
import { testInflux } from '../support/influx-db.ts';
import { useRedisServer } from '../support/redis-server.ts';
import { startProcess } from '../support/process.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * docker-compose's Redis servers ask for a password (requirepass, CAREWATCH_REDIS_PASSWORD): the
 * broker's sessions, queued messages and wills, and the web nodes' rooms, are not for any container
 * on the network to read or change. Here a real redis-server asks for one: every Redis client of
 * carewatch (the broker's store and its cluster fan-out, the web nodes' socket.io adapter) gets in
 * with the password in its URL, a client without it is refused, and production mode refuses the
 * demo password.
 */
const PASSWORD = 'a-redis-password-for-this-test';
const redis = useRedisServer({ password: PASSWORD });

describe('a Redis that asks for a password', () => {
  it('refuses a client without it', async () => {
    const anon = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    anon.on('error', () => undefined);
    try {
      await anon.connect().catch(() => undefined);
      await expect(anon.get('x')).rejects.toThrow(/NOAUTH|closed/);
    } finally {
      anon.disconnect();
    }
  });

  it("the broker's store and cluster fan-out use the password in the URL: a session's queue is kept there and delivered", async () => {
    const [device] = demoRegistry().site.devices.filter((d) => d.kind === 'smoke_detector') as [Device];
    const topic = deviceTopic(device.homeId, device.id, 'telemetry');
    const b = await startBroker({ config: { redisUrl: redis.url, cluster: { nodeId: 'auth' } } });
    try {
      const away = await connect(b, 'svc-ingest', { clientId: 'svc-ingest-auth', clean: false });
      await away.subscribeAsync(FILTERS.telemetry, { qos: 1 });
      await away.endAsync();
      const dev = await connect(b, device.id);
      for (let seq = 1; seq <= 5; seq++) await dev.publishAsync(topic, JSON.stringify({ ts: Date.now(), seq, metrics: { temperature_c: 21 } }), { qos: 1 });
      await dev.endAsync();
      const { client, received } = await connectRecording(b, 'svc-ingest', { clientId: 'svc-ingest-auth', clean: false });
      await until('the 5 queued readings', () => received.length >= 5);
      await client.endAsync();
      expect(received.map((r) => json(r).seq)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await b.close();
    }
  }, 30_000);

  it("the web nodes' socket.io adapter uses it: a sign-out on one node reaches the other", async () => {
    const influx = testInflux('redis_auth');
    const dirs = [await tempDir(), await tempDir()];
    const [a, b] = [await startAlerts({ influx, stateDir: dirs[0]!.path, config: { redisUrl: redis.url } }), await startAlerts({ influx, stateDir: dirs[1]!.path, config: { redisUrl: redis.url } })];
    try {
      const token = await loginToken(a, 'staff-h01');
      expect((await b.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
      expect((await a.app.inject({ method: 'POST', url: '/api/logout', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(204);
      await until('node b refuses the token', async () => (await b.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })).statusCode === 401);
    } finally {
      await a.close();
      await b.close();
      for (const d of dirs) await d!.remove();
    }
  }, 60_000);
});

describe('production mode refuses the demo Redis password (docker-compose default "demo-redis")', () => {
  it('recognises it in a URL, encoded or not', () => {
    expect(hasDemoRedisPassword('redis://:demo-redis@redis:6379')).toBe(true);
    expect(hasDemoRedisPassword('redis://default:demo%2Dredis@redis:6379/0')).toBe(true);
    expect(hasDemoRedisPassword(`redis://:${PASSWORD}@redis:6379`)).toBe(false);
    expect(hasDemoRedisPassword('redis://redis:6379')).toBe(false);
    expect(hasDemoRedisPassword(undefined)).toBe(false);
  });

  const cases: ReadonlyArray<{ name: string; entry: string; env: Record<string, string>; variable: string }> = [
    { name: 'broker', entry: 'broker/main.ts', env: { CAREWATCH_BROKER_REDIS_URL: 'redis://:demo-redis@127.0.0.1:1' }, variable: 'CAREWATCH_BROKER_REDIS_URL' },
    {
      name: 'alerts',
      entry: 'alerts/main.ts',
      env: { CAREWATCH_REDIS_URL: 'redis://:demo-redis@127.0.0.1:1', CAREWATCH_TOKEN_SECRET: 'a-production-secret-of-at-least-32-characters', CAREWATCH_ALERTS_PASSWORD: 'not-a-demo-password' },
      variable: 'CAREWATCH_REDIS_URL',
    },
  ];
  for (const c of cases) {
    it(`the ${c.name} process stops with a message naming ${c.variable}`, async () => {
      const p = startProcess(`${c.name}-demo-redis`, c.entry, { NODE_ENV: 'production', CAREWATCH_BROKER_PORT: '0', CAREWATCH_BROKER_WS_PORT: '0', ...c.env });
      const code = await new Promise<number | null>((resolve) => p.child.once('exit', (code) => resolve(code)));
      expect(code).toBe(1);
      expect(p.output()).toContain(c.variable);
      expect(p.output()).toContain('demo password');
    });
  }
});
