import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../common/influxd.ts';
import { device, watch, type TestDevice, type WatchClient } from '../e2e/stack.ts';
import { testInflux } from '../support/influx-db.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { clusterNodeEnv, nodeMetric } from '../support/cluster-node.ts';
import { createRedisServer, type RedisServer } from '../support/redis-server.ts';
import { DEMO_SITE_PATH, demoSecret } from '../support/registry.ts';

/**
 * Issue 14, the alarm lane (docs/scaling.md "The alarm lane"): on a broker cluster, alerts' signals
 * sessions and publisher connect to a node of their own (CAREWATCH_SIGNALS_MQTT_URL), its telemetry
 * feed to the services' node (CAREWATCH_MQTT_URL). The lane node then receives from Redis the
 * cluster's events and statuses and none of its readings, so on a saturated cluster an alarm is not
 * delivered behind the readings' backlog of the services' node. Separate processes from their
 * main.ts, a private Redis (pub/sub is server-wide), devices on a third node.
 */

const TOKEN_SECRET = 'alarm-lane-test-token-secret-0123456789abcdef';
type Name = 'svc' | 'lane' | 'dev';

let dir: string;
let redis: RedisServer;
const nodes: Partial<Record<Name, { proc: TestProcess; port: number; httpPort: number }>> = {};
let alerts: TestProcess | undefined;
let alertsPort = 0;
const devices: TestDevice[] = [];
const pages: WatchClient[] = [];
const { url: influxUrl, database } = testInflux('lane');

const mqttUrlOf = (n: Name): string => `mqtt://127.0.0.1:${nodes[n]?.port ?? 0}`;

async function startNode(name: Name): Promise<void> {
  const [port, wsPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const proc = startProcess(`lane-broker-${name}`, 'broker/main.ts', clusterNodeEnv({ nodeId: name, redisUrl: redis.url, port, wsPort, httpPort, heartbeatMs: 2_000 }));
  nodes[name] = { proc, port, httpPort };
  await proc.waitForOutput(/broker listening/, 120_000);
}

/** A metric of one node's /metrics, by name. */
const metric = (name: Name, metricName: string): Promise<number> => nodeMetric(nodes[name]?.httpPort ?? 0, metricName.replace(/^carewatch_/, ''));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'carewatch-lane-'));
  redis = await createRedisServer();
  await redis.start();
  await Promise.all((['svc', 'lane', 'dev'] as const).map(startNode));
  alertsPort = await freePort();
  alerts = startProcess('lane-alerts', 'alerts/main.ts', {
    CAREWATCH_REGISTRY: DEMO_SITE_PATH,
    CAREWATCH_MQTT_URL: mqttUrlOf('svc'),
    CAREWATCH_SIGNALS_MQTT_URL: mqttUrlOf('lane'),
    CAREWATCH_INFLUX_URL: influxUrl,
    CAREWATCH_INFLUX_DB: database,
    CAREWATCH_TOKEN_SECRET: TOKEN_SECRET,
    CAREWATCH_ALERTS_PASSWORD: demoSecret('svc-alerts'),
    CAREWATCH_HTTP_PORT: String(alertsPort),
    CAREWATCH_STATE_DIR: join(dir, 'alerts-state'),
  });
  await eventually('alerts healthy', async () => ((await fetch(`http://127.0.0.1:${alertsPort}/healthz`).catch(() => undefined))?.ok === true ? true : undefined), 120_000, 250);
}, 240_000);

afterAll(async () => {
  for (const p of pages) p.close();
  for (const d of devices) await d.close().catch(() => undefined);
  await alerts?.stop();
  for (const n of Object.values(nodes)) await n?.proc.stop();
  await redis?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

it("holds alerts' signals sessions on the lane node, which receives the cluster's events and no readings; a call point's alarm reaches the page", async () => {
  // Alerts' publisher and its signals session on the lane, its telemetry feed on the services' node.
  expect(await metric('lane', 'carewatch_broker_clients_connected')).toBe(2);
  expect(await metric('svc', 'carewatch_broker_clients_connected')).toBe(1);
  // The lane holds a glob for events and one for statuses; the services' node one for telemetry.
  expect(await metric('lane', 'carewatch_broker_cluster_fanout_patterns')).toBe(2);
  expect(await metric('svc', 'carewatch_broker_cluster_fanout_patterns')).toBe(1);
  expect(await metric('lane', 'carewatch_broker_cluster_fanout_all')).toBe(0);

  const staff = await watch(`http://127.0.0.1:${alertsPort}`, 'staff-h01');
  pages.push(staff);
  const start = await metric('lane', 'carewatch_broker_cluster_messages_from_redis_total');
  const sd = await device(mqttUrlOf('dev'), 'h01-sd-r101');
  const mcp = await device(mqttUrlOf('dev'), 'h01-mcp-f2-corridor');
  devices.push(sd, mcp);
  // Each device's retained online status is acknowledged by its own node once published to Redis; the
  // lane takes it from Redis a moment later (under CI load, after `before` was read: counted as 2).
  await eventually('the two online statuses on the lane', async () => ((await metric('lane', 'carewatch_broker_cluster_messages_from_redis_total')) - start >= 2 ? true : undefined));
  const before = await metric('lane', 'carewatch_broker_cluster_messages_from_redis_total');
  const N = 50;
  for (let i = 0; i < N; i++) await sd.telemetry({ smoke_obscuration_pct_per_m: 0.1, temperature_c: 22 });
  await mcp.event('manual_call_point');
  const alarm = await staff.waitFor("the call point's fire alarm", (a) => a.category === 'fire' && a.deviceId === 'h01-mcp-f2-corridor' && a.state === 'raised');
  expect(alarm.homeId).toBe('h01');
  // The readings reached alerts (its live feed on the services' node): a reading that crosses the
  // smoke threshold raises its alarm too.
  await sd.telemetry({ smoke_obscuration_pct_per_m: 30, temperature_c: 22 });
  await sd.telemetry({ smoke_obscuration_pct_per_m: 30, temperature_c: 22 });
  await staff.waitFor("the detector's reading-based alarm", (a) => a.deviceId === 'h01-sd-r101' && a.state === 'raised');
  // What reached the lane node from Redis since: the event and nothing of the 52 readings (the
  // devices' retained online statuses were counted before `before`; alerts' own alert changes are published
  // on `carewatch/v1/h01/alerts`, which no filter on the lane matches).
  expect(await metric('lane', 'carewatch_broker_cluster_messages_from_redis_total') - before).toBe(1);
});
