/**
 * `npm start`: the whole carewatch stack on the demo site, on this machine.
 * Starts a private InfluxDB (data in .tmp/demo/influx), then broker, ingest, the demo notification
 * receiver (device-sim/notify-sink.ts: prints every WeCom, DingTalk, SMS and webhook message the
 * alerts send, issue 15), alerts (with the live page, notifying per config/notify-demo.json) and the
 * device simulator for the demo homes as child processes, prints the URLs and the demo logins, and
 * stops everything on Ctrl-C.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createInfluxServer, INFLUXD_BIN } from '../common/influxd.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const demoDir = join(root, '.tmp', 'demo');
const ports = { influx: 8086, mqtt: 1883, ws: 8083, http: 8080, sim: 8090, sink: 8070 };

function ensureInfluxd(): void {
  if (existsSync(INFLUXD_BIN)) return;
  if (process.getuid?.() === 0) {
    console.log('InfluxDB is not installed; installing Debian packages (scripts/install-system-deps.sh) …');
    const r = spawnSync('bash', [join(root, 'scripts/install-system-deps.sh')], { stdio: 'inherit' });
    if (r.status === 0 && existsSync(INFLUXD_BIN)) return;
  }
  console.error('carewatch needs InfluxDB 1.x (Debian package "influxdb"): sudo apt-get update && sudo apt-get install -y influxdb');
  process.exit(1);
}

const children: ChildProcess[] = [];
function startProcess(name: string, entry: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, entry)], {
    cwd: root,
    env: { ...process.env, CAREWATCH_LOG_LEVEL: process.env.CAREWATCH_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`[demo] ${name} exited (${code ?? signal}); stopping the stack`);
    void stop(1);
  });
  children.push(child);
  return child;
}

let stopping = false;
let influxClose: (() => Promise<void>) | undefined;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  await influxClose?.();
  process.exit(code);
}

async function waitFor(url: string, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up at ${url}`);
}

async function main(): Promise<void> {
  ensureInfluxd();
  mkdirSync(demoDir, { recursive: true });
  const influx = await createInfluxServer({ dir: join(demoDir, 'influx'), port: ports.influx });
  await influx.start();
  influxClose = () => influx.stop();
  const common = {
    CAREWATCH_REGISTRY: join(root, 'config/demo-site.json'),
    CAREWATCH_MQTT_URL: `mqtt://127.0.0.1:${ports.mqtt}`,
    CAREWATCH_INFLUX_URL: influx.url,
    CAREWATCH_INFLUX_DB: 'carewatch',
  };
  // The broker's durable store (sessions, queued QoS 1 messages, retained statuses): docs/broker.md.
  startProcess('broker', 'broker/main.ts', { ...common, CAREWATCH_BROKER_PORT: String(ports.mqtt), CAREWATCH_BROKER_WS_PORT: String(ports.ws), CAREWATCH_BROKER_STORE_DIR: join(demoDir, 'broker-store') });
  await new Promise((r) => setTimeout(r, 1500));
  startProcess('ingest', 'ingest/main.ts', { ...common, CAREWATCH_INGEST_PASSWORD: 'demo-svc-ingest', CAREWATCH_SPOOL_DIR: join(demoDir, 'spool') });
  // Issue 15: the notifications' stand-in for WeCom, DingTalk, the SMS gateway and the bureau's webhook
  // (config/notify-demo.json points at 127.0.0.1:8070); its output is the demo's "phones".
  startProcess('notify-sink', 'device-sim/notify-sink-main.ts', { CAREWATCH_REGISTRY: common.CAREWATCH_REGISTRY, CAREWATCH_SINK_PORT: String(ports.sink) });
  await waitFor(`http://127.0.0.1:${ports.sink}/healthz`, 'notify-sink');
  startProcess('alerts', 'alerts/main.ts', {
    ...common,
    CAREWATCH_NOTIFY_CONFIG: join(root, 'config/notify-demo.json'),
    CAREWATCH_ALERTS_PASSWORD: 'demo-svc-alerts',
    CAREWATCH_HTTP_PORT: String(ports.http),
    // scrypt logins and the alert journal's fsync share libuv's pool (docs/alerts.md).
    UV_THREADPOOL_SIZE: '16',
    // glibc keeps each thread's scrypt block otherwise (docs/alerts.md "Memory").
    MALLOC_MMAP_THRESHOLD_: '131072',
    CAREWATCH_STATE_DIR: join(demoDir, 'alerts-state'),
  });
  await waitFor(`http://127.0.0.1:${ports.http}/health`, 'alerts');
  startProcess('device-sim', 'device-sim/main.ts', { ...common, CAREWATCH_SIM_CONTROL_PORT: String(ports.sim) });

  console.log(`
carewatch demo is running (Ctrl-C stops it)

  live page      http://127.0.0.1:${ports.http}/
  API (OpenAPI)  http://127.0.0.1:${ports.http}/api
  MQTT           mqtt://127.0.0.1:${ports.mqtt}   MQTT over WebSocket ws://127.0.0.1:${ports.ws}/mqtt
  InfluxDB       ${influx.url}  (database "carewatch"; Grafana provisioning in dashboards/grafana/)
  notifications  printed below as they arrive ([notify-sink] …: WeCom / DingTalk group robots, SMS,
                 the bureau's webhook, each with whom it was for); list: http://127.0.0.1:${ports.sink}/messages
                 make the channels fail (retries, degraded /health):
                   curl -X PUT -d '{"failWith":500}' http://127.0.0.1:${ports.sink}/control   ('{"failWith":null}' undoes it)

  demo logins (password = "demo-" + username):
    staff-h01 … staff-h09       duty staff of one home     e.g. staff-h01 / demo-staff-h01
    director-h01 … director-h09 home directors
    bureau                      district bureau officer    bureau / demo-bureau
    admin                       administrator              admin / demo-admin
    provider-pv01, provider-pv02 home-care provider (issue 15): its households only (hh01–hh03, hh04–hh05)
    pv01-manager, pv02-manager  the provider's manager: also edits its on-call roster (☎ 值班表)

  make something happen:
    npx tsx device-sim/cli.ts fire h01 r101          a fire in room 101 of 阳光颐养院: the nurse on duty is
                                                     @-mentioned in the WeCom group and texted; after 15 s
                                                     unacknowledged, the director and the bureau
    npx tsx device-sim/cli.ts call hh01-p01          an elder at home (household hh01) presses the call button
    npx tsx device-sim/cli.ts desaturation h01-p01   a resident's SpO2 falls
    npx tsx device-sim/cli.ts list                   scenarios and devices
`);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
main().catch((err: unknown) => {
  console.error(`[demo] ${(err as Error).message}`);
  void stop(1);
});
