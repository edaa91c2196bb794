import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_LIMITS } from '../../broker/config.ts';
import { graceSeconds } from '../support/compose.ts';
import { notifyConfigProblems, type NotifyConfig } from '../../alerts/notify/config.ts';
import { DASHBOARDS_PATH, INFLUX_URL_VARIABLE, PROVISIONING_PATH, renderProvisioning } from '../../dashboards/grafana/src/render.ts';

/**
 * The deployment files, checked offline (issue 13): no Docker engine runs here or in CI, so
 * docker-compose.yml is linted with dclint, resolved with Debian's docker-compose 1.29 (`config`,
 * which validates it and expands variables and anchors as an engine would), and the resolved form
 * is checked against the Grafana provisioning the code renders and against what an operator
 * expects: health checks, start order on health, restart policies, named volumes, ports on
 * 127.0.0.1 unless configured. The Dockerfile is read for its stages, user and health check.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

interface Service {
  image?: string;
  command?: string[];
  build?: unknown;
  restart?: string;
  healthcheck?: { test?: string[] };
  depends_on?: Record<string, { condition?: string }>;
  environment?: Record<string, string | null>;
  volumes?: Mount[];
  ports?: Port[];
  profiles?: string[];
  stop_grace_period?: string;
}
interface Mount {
  readonly type: 'bind' | 'volume';
  readonly source: string;
  readonly target: string;
}
interface Port {
  readonly host_ip: string | undefined;
  readonly published: number;
  readonly target: number;
}
interface Resolved {
  readonly services: Record<string, Service>;
  readonly volumes: Record<string, unknown>;
}

/** docker-compose 1.29 prints the short syntax: `source:target[:mode]` and `[ip:]published:target/proto`. */
function mountOf(short: string): Mount {
  const [source = '', target = ''] = short.split(':');
  return { type: source.startsWith('/') ? 'bind' : 'volume', source, target };
}
function portOf(short: string): Port {
  const parts = short.replace(/\/(tcp|udp)$/, '').split(':');
  const target = Number(parts.pop());
  const published = Number(parts.pop());
  return { host_ip: parts[0], published, target };
}

const cache = new Map<string, Promise<Resolved>>();
function resolved(env: Record<string, string> = {}): Promise<Resolved> {
  const key = JSON.stringify(env);
  let hit = cache.get(key);
  if (hit === undefined) {
    // A clean environment: the resolved file must not depend on what the test machine exports.
    hit = run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } }).then(({ stdout }) => {
      const raw = parse(stdout) as { services: Record<string, Omit<Service, 'volumes' | 'ports'> & { volumes?: string[]; ports?: string[] }>; volumes?: Record<string, unknown> };
      const services = Object.fromEntries(
        Object.entries(raw.services).map(([name, s]) => [name, { ...s, volumes: (s.volumes ?? []).map(mountOf), ports: (s.ports ?? []).map(portOf) }]),
      );
      return { services, volumes: raw.volumes ?? {} };
    });
    cache.set(key, hit);
  }
  return hit;
}

describe('docker-compose.yml', () => {
  it('passes dclint with no errors', async () => {
    const { stdout, stderr } = await run(`${ROOT}node_modules/.bin/dclint`, ['docker-compose.yml'], { cwd: ROOT }).catch((err: { stdout: string; stderr: string }) => {
      throw new Error(`dclint failed:\n${err.stdout}${err.stderr}`);
    });
    expect(`${stdout}${stderr}`).not.toMatch(/\berror\b/);
  });

  it('is valid for docker-compose and has every service the stack needs', async () => {
    const c = await resolved();
    expect(Object.keys(c.services).sort()).toEqual(['alerts', 'broker', 'device-sim', 'grafana', 'influxdb', 'ingest', 'notify-sink', 'redis']);
    expect(c.services['device-sim']?.profiles).toEqual(['demo']);
    expect(c.services['notify-sink']?.profiles).toEqual(['demo']);
  });

  it('starts each service on the health of what it needs, restarts it, checks its health, keeps state in named volumes', async () => {
    const c = await resolved();
    for (const [name, s] of Object.entries(c.services)) {
      expect(s.restart, name).toBe('unless-stopped');
      if (name !== 'device-sim') expect(s.healthcheck?.test?.length, `${name} health check`).toBeGreaterThan(0);
      for (const [dep, d] of Object.entries(s.depends_on ?? {})) {
        expect(d.condition, `${name} → ${dep}`).toBe('service_healthy');
        expect(c.services[dep]?.healthcheck, `${dep} has a health check ${name} waits for`).toBeDefined();
      }
    }
    expect(Object.keys(c.services.ingest?.depends_on ?? {}).sort()).toEqual(['broker', 'influxdb']);
    expect(Object.keys(c.services.alerts?.depends_on ?? {}).sort()).toEqual(['broker', 'influxdb']);
    // State that must survive a container's replacement sits in named volumes.
    const named = (svc: string, target: string): boolean => (c.services[svc]?.volumes ?? []).some((v) => v.type === 'volume' && v.target === target && v.source in c.volumes);
    expect(named('influxdb', '/var/lib/influxdb')).toBe(true);
    expect(named('ingest', c.services.ingest?.environment?.CAREWATCH_SPOOL_DIR ?? '?')).toBe(true);
    expect(named('alerts', c.services.alerts?.environment?.CAREWATCH_STATE_DIR ?? '?')).toBe(true);
    expect(named('redis', '/data')).toBe(true);
    expect(named('broker', c.services.broker?.environment?.CAREWATCH_BROKER_STORE_DIR ?? '?')).toBe(true);
  });

  it("gives each carewatch process longer to stop than a broker's close may take with Redis stalled (Docker's default is 10 s)", async () => {
    const c = await resolved();
    const carewatch = Object.entries(c.services).filter(([, s]) => s.image === 'carewatch:latest');
    expect(carewatch.map(([n]) => n).sort()).toEqual(['alerts', 'broker', 'device-sim', 'ingest', 'notify-sink']);
    for (const [name, s] of carewatch) expect(graceSeconds(s.stop_grace_period), name).toBeGreaterThan((2 * DEFAULT_LIMITS.redisCloseTimeoutMs) / 1000);
  });

  it('publishes every port on 127.0.0.1 unless CAREWATCH_BIND says otherwise', async () => {
    const byDefault = await resolved();
    const ports = Object.entries(byDefault.services).flatMap(([name, s]) => (s.ports ?? []).map((p) => ({ name, ...p })));
    expect(ports.length).toBeGreaterThanOrEqual(5);
    for (const p of ports) expect(p.host_ip, `${p.name}:${p.target}`).toBe('127.0.0.1');
    const open = await resolved({ CAREWATCH_BIND: '0.0.0.0' });
    expect(open.services.broker?.ports?.map((p) => p.host_ip)).toEqual(['0.0.0.0', '0.0.0.0', '0.0.0.0', '0.0.0.0']);
    // MQTT, ws, MQTT over TLS (IANA secure-mqtt), WSS.
    expect(byDefault.services.broker?.ports?.map((p) => p.target).sort()).toEqual([1883, 8083, 8084, 8883]);
  });

  it('turns TLS on from the environment, with the certificate folder mounted read-only', async () => {
    const off = await resolved();
    expect(off.services.broker?.environment?.CAREWATCH_BROKER_TLS_CERT_FILE ?? '').toBe('');
    expect(off.services.broker?.environment?.CAREWATCH_BROKER_PLAIN).toBe('true');
    const on = await resolved({
      CAREWATCH_TLS_DIR: '/etc/carewatch/tls',
      CAREWATCH_BROKER_TLS_CERT_FILE: '/run/carewatch/tls/fullchain.pem',
      CAREWATCH_BROKER_TLS_KEY_FILE: '/run/carewatch/tls/privkey.pem',
      CAREWATCH_BROKER_PLAIN: 'false',
      CAREWATCH_ALERTS_TLS_CERT_FILE: '/run/carewatch/tls/fullchain.pem',
      CAREWATCH_ALERTS_TLS_KEY_FILE: '/run/carewatch/tls/privkey.pem',
      CAREWATCH_MQTT_URL: 'mqtts://broker:8883',
      CAREWATCH_MQTT_CA_FILE: '/run/carewatch/tls/ca.pem',
    });
    expect(on.services.broker?.environment).toMatchObject({ CAREWATCH_BROKER_TLS_CERT_FILE: '/run/carewatch/tls/fullchain.pem', CAREWATCH_BROKER_TLS_KEY_FILE: '/run/carewatch/tls/privkey.pem', CAREWATCH_BROKER_PLAIN: 'false' });
    expect(on.services.alerts?.environment).toMatchObject({ CAREWATCH_ALERTS_TLS_CERT_FILE: '/run/carewatch/tls/fullchain.pem', CAREWATCH_MQTT_URL: 'mqtts://broker:8883', CAREWATCH_MQTT_CA_FILE: '/run/carewatch/tls/ca.pem' });
    expect(on.services.ingest?.environment).toMatchObject({ CAREWATCH_MQTT_URL: 'mqtts://broker:8883', CAREWATCH_MQTT_CA_FILE: '/run/carewatch/tls/ca.pem' });
    for (const svc of ['broker', 'ingest', 'alerts']) {
      expect(on.services[svc]?.volumes, svc).toContainEqual({ type: 'bind', source: '/etc/carewatch/tls', target: '/run/carewatch/tls' });
    }
    // The alerts health check still passes once its port speaks HTTPS.
    expect(on.services.alerts?.healthcheck?.test).toContain('https://127.0.0.1:8080/healthz');
  });

  it("asks for a password on Redis (CAREWATCH_REDIS_PASSWORD), the one the broker's URL carries, and its health check gives it", async () => {
    for (const [env, password] of [[{}, 'demo-redis'], [{ CAREWATCH_REDIS_PASSWORD: 'an-operators-password' }, 'an-operators-password']] as const) {
      const c = await resolved(env);
      const command = c.services.redis?.command ?? [];
      expect(command[command.indexOf('--requirepass') + 1]).toBe(password);
      expect(c.services.redis?.environment?.REDISCLI_AUTH).toBe(password);
      expect(c.services.redis?.healthcheck?.test).toContain('redis-cli');
      expect(c.services.broker?.environment?.CAREWATCH_BROKER_REDIS_URL).toBe(`redis://:${password}@redis:6379`);
    }
  });

  it('takes secrets from the environment or from files, never a demo secret in production unless given', async () => {
    const demo = await resolved();
    expect(demo.services.alerts?.environment?.CAREWATCH_ALERTS_PASSWORD).toBe('demo-svc-alerts');
    const prod = await resolved({ NODE_ENV: 'production', CAREWATCH_ALERTS_PASSWORD: '', CAREWATCH_ALERTS_PASSWORD_FILE: '/run/secrets/alerts', CAREWATCH_TOKEN_SECRET_FILE: '/run/secrets/token' });
    const env = prod.services.alerts?.environment ?? {};
    expect(env.NODE_ENV).toBe('production');
    // Empty counts as unset for carewatch's config loader, so only the file is read.
    expect(env.CAREWATCH_ALERTS_PASSWORD ?? '').toBe('');
    expect(env.CAREWATCH_ALERTS_PASSWORD_FILE).toBe('/run/secrets/alerts');
    expect(env.CAREWATCH_TOKEN_SECRET_FILE).toBe('/run/secrets/token');
    // The metrics token reaches every process (production serves no metrics without it).
    const scraped = await resolved({ NODE_ENV: 'production', CAREWATCH_METRICS_TOKEN_FILE: '/run/secrets/metrics' });
    for (const svc of ['broker', 'ingest', 'alerts']) expect(scraped.services[svc]?.environment?.CAREWATCH_METRICS_TOKEN_FILE, svc).toBe('/run/secrets/metrics');
  });
});

describe('Grafana provisioning against docker-compose.yml', () => {
  it('mounts every path the provisioning reads, from the folders the generator writes', async () => {
    const grafana = (await resolved()).services.grafana;
    const mounts = grafana?.volumes ?? [];
    const mountOf = (target: string) => mounts.find((m) => target === m.target || target.startsWith(`${m.target}/`));
    const dashboards = mountOf(DASHBOARDS_PATH);
    expect(dashboards?.type).toBe('bind');
    expect(dashboards?.target).toBe(DASHBOARDS_PATH);
    expect(dashboards?.source).toBe(`${ROOT}dashboards/grafana/dashboards`);
    const provisioning = mountOf(`${PROVISIONING_PATH}/datasources`);
    expect(provisioning?.source).toBe(`${ROOT}dashboards/grafana/provisioning`);
    // The provider's path is the one mounted.
    const provider = parse(renderProvisioning().get('provisioning/dashboards/carewatch.yaml') ?? '') as { providers: Array<{ options: { path: string } }> };
    for (const p of provider.providers) expect(mountOf(p.options.path)?.source, p.options.path).toBe(`${ROOT}dashboards/grafana/dashboards`);
  });

  it('uses no ${VAR:-default} (Grafana lacks it) and points the datasource at the InfluxDB service', async () => {
    const c = await resolved();
    for (const [rel, content] of renderProvisioning()) {
      if (rel.endsWith('.yaml')) expect(content, rel).not.toMatch(/\$\{[A-Za-z_][A-Za-z0-9_]*:-/);
    }
    const ds = parse(renderProvisioning().get('provisioning/datasources/carewatch.yaml') ?? '') as { datasources: Array<{ uid: string; url: string }> };
    const url = ds.datasources[0]?.url ?? '';
    expect(url).toBe(`\${${INFLUX_URL_VARIABLE}}`);
    // Grafana expands the variable from its own environment: compose must set it, to the InfluxDB service.
    const value = c.services.grafana?.environment?.[INFLUX_URL_VARIABLE];
    expect(value).toBeDefined();
    const host = new URL(value ?? 'http://missing').hostname;
    expect(c.services[host]?.image, `${host} is a compose service`).toMatch(/^influxdb:1\./);
    expect(Object.keys(c.services.grafana?.depends_on ?? {})).toContain(host);
    // Every panel's datasource uid exists in the provisioning.
    const uids = new Set(ds.datasources.map((d) => d.uid));
    for (const [rel, content] of renderProvisioning()) {
      if (!rel.endsWith('.json')) continue;
      for (const m of content.matchAll(/"uid": "([^"]+)"/g)) if (m[1]!.startsWith('carewatch-influx') || rel.includes('datasource')) expect(uids.has(m[1]!), `${rel}: ${m[1]}`).toBe(true);
      for (const m of content.matchAll(/"datasource": \{\s*"type": "influxdb",\s*"uid": "([^"]+)"/g)) expect(uids.has(m[1]!), `${rel}: ${m[1]}`).toBe(true);
    }
  });
});

describe('Dockerfile', () => {
  it('builds in two stages, runs production dependencies only as a non-root user, with a health check and writable state', async () => {
    const text = await readFile(`${ROOT}Dockerfile`, 'utf8');
    const stages = text.split(/^FROM /m).slice(1);
    expect(stages.length).toBe(2);
    const runtime = stages[1] ?? '';
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^HEALTHCHECK /m);
    expect(runtime).toMatch(/COPY --from=build \/app\/node_modules/);
    expect(stages[0]).toMatch(/npm ci --omit=dev/);
    // The state folder is made and handed to `node` before USER, so named volumes start writable.
    expect(runtime.indexOf('chown -R node:node /var/lib/carewatch')).toBeGreaterThan(-1);
    expect(runtime.indexOf('chown -R node:node /var/lib/carewatch')).toBeLessThan(runtime.indexOf('USER node'));
    // No test or build tooling reaches the runtime image.
    expect(runtime).not.toMatch(/npm (ci|install)(?![^\n]*--omit=dev)/);
    const { stdout } = await run('node', ['-e', 'const p=require("./package.json");console.log(JSON.stringify(Object.keys(p.dependencies)))'], { cwd: ROOT });
    for (const devOnly of ['vitest', 'typescript', 'playwright-core', '@grafana/grafana-foundation-sdk', 'dclint']) expect(JSON.parse(stdout) as string[]).not.toContain(devOnly);
  });

  it('has a health check script that tells a live port from a dead one', async () => {
    const { createServer } = await import('node:net');
    const server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    await expect(run('node', ['scripts/healthcheck.mjs', `tcp://127.0.0.1:${port}`], { cwd: ROOT })).resolves.toBeDefined();
    await new Promise<void>((r) => server.close(() => r()));
    await expect(run('node', ['scripts/healthcheck.mjs', `tcp://127.0.0.1:${port}`], { cwd: ROOT })).rejects.toThrow();
    await expect(run('node', ['scripts/healthcheck.mjs', `http://127.0.0.1:${port}/health`], { cwd: ROOT })).rejects.toThrow();
  });
});

describe('notifications in docker-compose.yml (issue 15)', () => {
  it("the demo's alerts notify the notify-sink service with the demo config; production names its own file in the mounted folder", async () => {
    const demo = await resolved();
    const env = demo.services.alerts?.environment ?? {};
    expect(env.CAREWATCH_NOTIFY_CONFIG).toBe('config/notify-demo-compose.json');
    const config = JSON.parse(await readFile(`${ROOT}config/notify-demo-compose.json`, 'utf8')) as NotifyConfig;
    expect(notifyConfigProblems(config)).toEqual([]);
    // Every channel posts to a compose service listening on that port (the sink, in the demo profile).
    for (const ch of config.channels) {
      const u = new URL(ch.url);
      const sink = demo.services[u.hostname];
      expect(sink, `${ch.id}: ${u.hostname} is a compose service`).toBeDefined();
      expect(sink?.environment?.CAREWATCH_SINK_PORT, ch.id).toBe(u.port);
      expect(sink?.environment?.CAREWATCH_SINK_HOST).toBe('0.0.0.0');
    }
    expect(demo.services['notify-sink']?.healthcheck?.test).toContain('http://127.0.0.1:8070/healthz');
    // The same channels and routes as npm start's file, only the receiver's address differs.
    const local = await readFile(`${ROOT}config/notify-demo.json`, 'utf8');
    expect(JSON.parse(local.replaceAll('http://127.0.0.1:8070', 'http://notify-sink:8070'))).toEqual(config);
    // Production: its own file, from the read-only mounted folder; the demo one would be refused (test/alerts/main-notify.test.ts).
    const prod = await resolved({ NODE_ENV: 'production', CAREWATCH_NOTIFY_CONFIG: '/run/carewatch/notify/notify.json', CAREWATCH_NOTIFY_DIR: '/etc/carewatch/notify' });
    expect(prod.services.alerts?.environment?.CAREWATCH_NOTIFY_CONFIG).toBe('/run/carewatch/notify/notify.json');
    expect(prod.services.alerts?.volumes).toContainEqual({ type: 'bind', source: '/etc/carewatch/notify', target: '/run/carewatch/notify' });
  });
});
