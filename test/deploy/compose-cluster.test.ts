import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_LIMITS } from '../../broker/config.ts';
import { graceSeconds } from '../support/compose.ts';
import { COMPOSE_HAPROXY_CFG, composeHaproxyConfig } from '../support/haproxy.ts';
import { REDIS_PUBSUB_OUTPUT_LIMIT } from '../../broker/pubsub-resync.ts';
import { ROOT } from '../support/process.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * docker-compose.cluster.yml (issue 14): the cluster of test/cluster/all-nodes.test.ts on containers,
 * checked offline as docker-compose.yml is (test/deploy/compose.test.ts): dclint, Debian's
 * docker-compose 1.29 `config`, and the resolved services against what the cluster needs. Its HAProxy
 * configuration, deploy/haproxy.cfg, must be what test/support/haproxy.ts generates: the function the
 * cluster tests run HAProxy with.
 */
const run = promisify(execFile);
const FILE = 'docker-compose.cluster.yml';
const SECRET = 'compose-cluster-test-secret-0123456789abcdef';

interface Service {
  image?: string;
  command?: string[];
  restart?: string;
  healthcheck?: { test?: string[] };
  depends_on?: Record<string, { condition?: string }>;
  environment?: Record<string, string | null>;
  volumes?: string[];
  ports?: string[];
  stop_grace_period?: string;
}

async function resolved(env: Record<string, string> = { CAREWATCH_TOKEN_SECRET: SECRET }): Promise<{ services: Record<string, Service>; volumes: Record<string, unknown> }> {
  const { stdout } = await run('docker-compose', ['-f', FILE, 'config'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } });
  const c = parse(stdout) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
  return { services: c.services, volumes: c.volumes ?? {} };
}

const envOf = (s: Service | undefined, key: string): string => s?.environment?.[key] ?? '';
const homesOf = (s: Service | undefined): string[] => envOf(s, 'CAREWATCH_HOMES').split(',');

describe('docker-compose.cluster.yml', () => {
  it('is valid for docker-compose (config -q) and passes dclint', async () => {
    await run('docker-compose', ['-f', FILE, 'config', '-q'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', CAREWATCH_TOKEN_SECRET: SECRET } });
    const { stdout, stderr } = await run(join(ROOT, 'node_modules/.bin/dclint'), [FILE], { cwd: ROOT }).catch((err: { stdout: string; stderr: string }) => {
      throw new Error(`dclint failed:\n${err.stdout}${err.stderr}`);
    });
    expect(`${stdout}${stderr}`).not.toMatch(/\berror\b/);
  });

  it('refuses to resolve without CAREWATCH_TOKEN_SECRET: the web nodes must share one', async () => {
    await expect(run('docker-compose', ['-f', FILE, 'config', '-q'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } })).rejects.toMatchObject({ stderr: expect.stringContaining('set CAREWATCH_TOKEN_SECRET') });
  });

  it('has Redis, HAProxy, two broker nodes, two ingest and two alerts instances, each home owned once by each service', async () => {
    const c = await resolved();
    expect(Object.keys(c.services).sort()).toEqual(['alerts-1', 'alerts-2', 'broker-1', 'broker-2', 'haproxy', 'influxdb', 'ingest-1', 'ingest-2', 'redis', 'redis-web']);
    const homes = demoRegistry().site.homes.map((h) => h.id).sort();
    for (const svc of ['ingest', 'alerts']) {
      const [one, two] = [homesOf(c.services[`${svc}-1`]), homesOf(c.services[`${svc}-2`])];
      expect([...one, ...two].sort(), `${svc}: every home once`).toEqual(homes);
      expect(one.filter((h) => two.includes(h)), svc).toEqual([]);
    }
    // The same split for ingest and alerts, from the same two variables.
    expect(homesOf(c.services['ingest-1'])).toEqual(homesOf(c.services['alerts-1']));
    const moved = await resolved({ CAREWATCH_TOKEN_SECRET: SECRET, CAREWATCH_HOMES_1: 'h01', CAREWATCH_HOMES_2: 'h02,h03,h04,h05,h06,h07,h08,h09' });
    expect(homesOf(moved.services['ingest-2'])).toEqual(homesOf(moved.services['alerts-2']));
    expect(homesOf(moved.services['alerts-1'])).toEqual(['h01']);
  });

  it("gives each carewatch process longer to stop than a broker node's close may take with Redis stalled (Docker's default is 10 s)", async () => {
    const c = await resolved();
    const carewatch = Object.entries(c.services).filter(([, s]) => s.image === 'carewatch:latest');
    expect(carewatch.length).toBeGreaterThanOrEqual(6);
    for (const [name, s] of carewatch) expect(graceSeconds(s.stop_grace_period), name).toBeGreaterThan((2 * DEFAULT_LIMITS.redisCloseTimeoutMs) / 1000);
  });

  it('runs the broker nodes on one Redis, the web nodes on another, the services through HAProxy', async () => {
    const c = await resolved();
    const [b1, b2] = [c.services['broker-1'], c.services['broker-2']];
    for (const b of [b1, b2]) {
      expect(envOf(b, 'CAREWATCH_BROKER_CLUSTER')).toBe('redis');
      expect(envOf(b, 'CAREWATCH_BROKER_REDIS_URL')).toBe('redis://:demo-redis@redis:6379');
      expect(b?.ports ?? []).toEqual([]);
    }
    expect(envOf(b1, 'CAREWATCH_BROKER_NODE_ID')).not.toBe(envOf(b2, 'CAREWATCH_BROKER_NODE_ID'));
    // The broker nodes' Redis cuts a subscriber connection at the limit the tests run with, not at Redis' default.
    const command = c.services.redis?.command ?? [];
    expect(command[command.indexOf('--client-output-buffer-limit') + 1]).toBe(REDIS_PUBSUB_OUTPUT_LIMIT);
    const [a1, a2] = [c.services['alerts-1'], c.services['alerts-2']];
    expect(envOf(a1, 'CAREWATCH_INSTANCE')).not.toBe(envOf(a2, 'CAREWATCH_INSTANCE'));
    for (const a of [a1, a2]) {
      // A separate Redis server: the broker nodes subscribe to every pub/sub channel of theirs (docs/scaling.md "Limits").
      expect(envOf(a, 'CAREWATCH_REDIS_URL')).toBe('redis://:demo-redis@redis-web:6379');
      expect(envOf(a, 'CAREWATCH_TOKEN_SECRET')).toBe(SECRET);
      // The home state directory is one named volume shared by both: a home's rule state moves with it.
      expect(a?.volumes).toContain(`alerts-home-state:${envOf(a, 'CAREWATCH_HOME_STATE_DIR')}:rw`);
    }
    expect(envOf(a1, 'CAREWATCH_STATE_DIR')).toBe(envOf(a2, 'CAREWATCH_STATE_DIR'));
    expect(a1?.volumes?.find((v) => v.endsWith(`:${envOf(a1, 'CAREWATCH_STATE_DIR')}:rw`))).not.toBe(a2?.volumes?.find((v) => v.endsWith(`:${envOf(a2, 'CAREWATCH_STATE_DIR')}:rw`)));
    for (const svc of ['ingest-1', 'ingest-2', 'alerts-1', 'alerts-2']) {
      expect(envOf(c.services[svc], 'CAREWATCH_MQTT_URL'), svc).toBe('mqtt://haproxy:1883');
      expect(Object.keys(c.services[svc]?.depends_on ?? {}), svc).toContain('haproxy');
    }
    // Every service restarts, and each waits for the health of what it needs.
    for (const [name, s] of Object.entries(c.services)) {
      expect(s.restart, name).toBe('unless-stopped');
      expect(s.healthcheck?.test?.length, `${name} health check`).toBeGreaterThan(0);
      for (const [dep, d] of Object.entries(s.depends_on ?? {})) expect(d.condition, `${name} → ${dep}`).toBe('service_healthy');
    }
    expect(c.services.haproxy?.ports).toEqual(['127.0.0.1:1883:1883/tcp', '127.0.0.1:8083:8083/tcp']);
  });

  it('asks for a password on both Redis servers, the one every URL carries (CAREWATCH_REDIS_PASSWORD), and its health checks give it', async () => {
    const c = await resolved({ CAREWATCH_TOKEN_SECRET: SECRET, CAREWATCH_REDIS_PASSWORD: 'an-operators-password' });
    for (const r of ['redis', 'redis-web']) {
      const command = c.services[r]?.command ?? [];
      expect(command[command.indexOf('--requirepass') + 1], r).toBe('an-operators-password');
      expect(envOf(c.services[r], 'REDISCLI_AUTH'), r).toBe('an-operators-password');
      expect(c.services[r]?.healthcheck?.test, r).toContain('redis-cli');
    }
    for (const b of ['broker-1', 'broker-2']) expect(envOf(c.services[b], 'CAREWATCH_BROKER_REDIS_URL')).toBe('redis://:an-operators-password@redis:6379');
    for (const a of ['alerts-1', 'alerts-2']) expect(envOf(c.services[a], 'CAREWATCH_REDIS_URL')).toBe('redis://:an-operators-password@redis-web:6379');
  });

  it("uses the HAProxy configuration test/support/haproxy.ts generates, whose backends are the broker nodes' ports", async () => {
    const c = await resolved();
    const mount = c.services.haproxy?.volumes?.find((v) => v.includes(':/usr/local/etc/haproxy/haproxy.cfg'));
    expect(mount).toBe(`${join(ROOT, COMPOSE_HAPROXY_CFG)}:/usr/local/etc/haproxy/haproxy.cfg:ro`);
    const committed = await readFile(join(ROOT, COMPOSE_HAPROXY_CFG), 'utf8');
    // The committed file is the generated text under a one-line header (regenerate: docs/scaling.md "Docker Compose").
    expect(committed.replace(/^#.*\n/, '')).toBe(composeHaproxyConfig());
    // Its backends are the compose broker services, on the ports they listen on; its frontends are the published ports.
    const servers = [...committed.matchAll(/^ {2}server (\S+) ([^:\s]+):(\d+)$/gm)].map((m) => ({ host: m[2] ?? '', port: m[3] ?? '' }));
    expect(servers.length).toBe(4);
    for (const s of servers) {
      const b = c.services[s.host];
      expect(b, s.host).toBeDefined();
      expect([envOf(b, 'CAREWATCH_BROKER_PORT'), envOf(b, 'CAREWATCH_BROKER_WS_PORT')]).toContain(s.port);
    }
    const binds = [...committed.matchAll(/^ {2}bind 0\.0\.0\.0:(\d+)$/gm)].map((m) => m[1]);
    expect(binds).toEqual((c.services.haproxy?.ports ?? []).map((p) => p.split(':')[2]?.replace('/tcp', '')));
    // HAProxy 2.6 accepts it (names that do not resolve here only disable a server, init-addr none).
    const dir = await mkdtemp(join(tmpdir(), 'carewatch-compose-haproxy-'));
    try {
      await writeFile(join(dir, 'haproxy.cfg'), committed);
      const { stdout, stderr } = await run('/usr/sbin/haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')]);
      expect(`${stdout}${stderr}`).toMatch(/Configuration file is valid/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
