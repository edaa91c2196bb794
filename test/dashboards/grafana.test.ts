import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlerts, type Alerts } from '../../alerts/alerts.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import { createBroker, type Broker } from '../../broker/broker.ts';
import { createManualClock } from '../../common/clock.ts';
import { backfillStatement } from '../../common/influx-schema.ts';
import { allDashboards } from '../../dashboards/grafana/src/boards.ts';
import { renderProvisioning } from '../../dashboards/grafana/src/render.ts';
import { MEASUREMENTS, type Measurement } from '../../dashboards/grafana/src/schema.ts';
import { createSimulator, type Simulator } from '../../device-sim/simulator.ts';
import { createIngest, type Ingest } from '../../ingest/ingest.ts';
import { until } from '../alerts/support/harness.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { deviceTopic } from '../../contract/topics.ts';

/**
 * Grafana as code (issue 13). The committed provisioning must be exactly what the code renders, and
 * every query in it (panels, template variables, annotations) must run without error and return data
 * on a real InfluxDB 1.x that the real processes filled: the device simulator drives home h01
 * through the real broker into the real ingest (readings, events, statuses) and the real alerts
 * process (alerts, their audit, NEWS2, turns, bed presence, a care action), on one manual clock.
 * A query naming a measurement, tag or field that nothing writes returns no series and fails.
 */
const GRAFANA_DIR = fileURLToPath(new URL('../../dashboards/grafana/', import.meta.url));
const APP_DIR = fileURLToPath(new URL('../../dashboards/app/', import.meta.url));
const HOME = 'h01';
const RESIDENT = 'h01-p01';
const SIM_MINUTES = 40;

const registry = demoRegistry();
const logger = pino({ level: 'silent' });
const influx = testInflux('graf');
const start = Date.now() - (SIM_MINUTES + 5) * 60_000;
const clock = createManualClock(start);
let broker: Broker;
let ingest: Ingest;
let alerts: Alerts;
let sim: Simulator;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cw-grafana-'));
  broker = createBroker({ config: { host: '127.0.0.1', port: 0, wsPort: 0, production: false }, registry, logger });
  await broker.start();
  const mqttUrl = `mqtt://127.0.0.1:${broker.tcpPort}`;
  ingest = createIngest({
    config: { mqttUrl, username: 'svc-ingest', password: 'demo-svc-ingest', clientId: 'svc-ingest-graf', influxUrl: influx.url, influxDb: influx.database, spoolDir: join(dir, 'spool'), spoolMaxBytes: 64 * 1024 * 1024 },
    registry,
    logger,
  });
  await ingest.start();
  alerts = createAlerts({
    config: {
      mqttUrl,
      alertsPassword: 'demo-svc-alerts',
      influxUrl: influx.url,
      influxDb: influx.database,
      httpHost: '127.0.0.1',
      httpPort: 0,
      stateDir: join(dir, 'alerts'),
      tokenSecret: 'grafana-test-token-secret-0123456789abcdef',
      tokenTtlS: 3600,
      dashboardDir: APP_DIR,
      tickMs: 1000,
      restoreDays: 90,
    },
    registry,
    logger,
    rules: defaultRules(),
    clock,
    baselines: false,
    news2IntervalMs: 60_000,
  });
  await alerts.start();
  sim = createSimulator({ config: { mqttUrl, homes: [HOME], seed: 11 }, registry, logger, clock });
  await sim.start();

  // What a shift brings: a fire in a bedroom, a resident desaturating, one getting up and falling,
  // a detector fault, a device going offline.
  sim.scenario.fire(HOME, 'r103');
  sim.scenario.desaturation(RESIDENT);
  sim.scenario.fall('h01-p03');
  sim.scenario.detectorFault('h01-sd-r104');
  sim.scenario.deviceOffline('h01-sd-r105');
  for (let t = 0; t < SIM_MINUTES * 60_000; t += 2000) {
    clock.advance(2000);
    // Let sockets and the processes' queues move between steps (device time is the manual clock).
    await new Promise((r) => setTimeout(r, t % 20_000 === 0 ? 20 : 0));
  }
  const login = (await (await fetch(`http://127.0.0.1:${alerts.port}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'staff-h01', password: 'demo-staff-h01' }) })).json()) as { token: string };
  const action = await fetch(`http://127.0.0.1:${alerts.port}/api/residents/${RESIDENT}/actions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
    body: JSON.stringify({ action: 'turned', comment: 'turned to the left side' }),
  });
  expect(action.status).toBeLessThan(300);
  // A device of another home sends one reading ingest must refuse (a metric its kind lacks): the `rejected` measurement.
  const rogue = registry.devicesOfHome('h02').find((d) => d.kind === 'smoke_detector');
  if (rogue === undefined) throw new Error('no smoke detector in h02');
  const client = await mqtt.connectAsync(mqttUrl, { clientId: rogue.id, username: rogue.id, password: `demo-${rogue.id}`, protocolVersion: 4, reconnectPeriod: 0 });
  await client.publishAsync(deviceTopic(rogue.homeId, rogue.id, 'telemetry'), JSON.stringify({ ts: clock.now(), seq: 1, metrics: { gas_lel_pct: 3 } }), { qos: 1 });
  await client.endAsync();
  await until(() => {
    const s = ingest.stats();
    return s.acked > 0 && s.written >= s.acked && s.spool.checkpoint >= s.spool.end;
  }, 'ingest to write everything it acknowledged', 120_000);
  await alerts.drained();
  // The continuous query aggregates each minute on the wall clock; the simulated shift lies in the
  // past, so its aggregates are made with the same SELECT now (common/influx-schema.ts).
  await influxQuery(influx.url, influx.database, backfillStatement(influx.database, start, clock.now()));
}, 300_000);

afterAll(async () => {
  await sim?.close();
  await alerts?.close();
  await ingest?.close();
  await broker?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Grafana's macros and template variables, as Grafana substitutes them for the simulated shift. */
function substitute(q: string): string {
  return q
    .replace(/\$timeFilter/g, `time >= ${start}ms`)
    .replace(/\$__interval/g, '1m')
    .replace(/\/\^\$home\$\//g, `/^${HOME}$/`)
    .replace(/\/\^\$resident\$\//g, `/^${RESIDENT}$/`);
}

interface Query {
  readonly where: string;
  readonly query: string;
}

/** Every query of every rendered dashboard: panels' targets, template variables and annotations. */
function queries(): Query[] {
  const out: Query[] = [];
  for (const [file, board] of Object.entries(allDashboards())) {
    const b = board as unknown as {
      panels?: Array<{ title?: string; targets?: Array<{ query?: string }> }>;
      templating?: { list?: Array<{ name: string; query?: unknown }> };
      annotations?: { list?: Array<{ name: string; query?: string }> };
    };
    for (const p of b.panels ?? []) for (const t of p.targets ?? []) if (typeof t.query === 'string') out.push({ where: `${file} panel "${p.title ?? '?'}"`, query: t.query });
    for (const v of b.templating?.list ?? []) if (typeof v.query === 'string') out.push({ where: `${file} variable $${v.name}`, query: v.query });
    for (const a of b.annotations?.list ?? []) if (typeof a.query === 'string') out.push({ where: `${file} annotation "${a.name}"`, query: a.query });
  }
  return out;
}

describe('Grafana provisioning generated from code', () => {
  it('is committed exactly as `npm run grafana` renders it, with no stale dashboard files', async () => {
    const rendered = renderProvisioning();
    for (const [rel, content] of rendered) expect(await readFile(join(GRAFANA_DIR, rel), 'utf8'), `${rel} differs: run npm run grafana`).toBe(content);
    const onDisk = (await readdir(join(GRAFANA_DIR, 'dashboards'))).filter((f) => f.endsWith('.json')).map((f) => `dashboards/${f}`);
    expect(onDisk.sort()).toEqual([...rendered.keys()].filter((k) => k.startsWith('dashboards/')).sort());
  });

  it('has the bureau overview, one per home, one per resident and ingest health, every panel on the provisioned datasource', () => {
    const boards = Object.values(allDashboards());
    expect(boards.map((b) => b.uid).sort()).toEqual(['carewatch-bureau', 'carewatch-home', 'carewatch-ingest', 'carewatch-resident']);
    const yaml = renderProvisioning().get('provisioning/datasources/carewatch.yaml') ?? '';
    const uid = /uid: (\S+)/.exec(yaml)?.[1];
    for (const b of boards) {
      for (const p of (b.panels ?? []) as Array<{ type: string; title?: string; datasource?: { uid?: string }; targets?: Array<{ datasource?: { uid?: string } }> }>) {
        if (p.type === 'row') continue;
        expect(p.datasource?.uid, `${b.uid} / ${p.title}`).toBe(uid);
        for (const t of p.targets ?? []) expect(t.datasource?.uid).toBe(uid);
      }
    }
    // Template variables: the home dashboard picks a home, the resident dashboard a home and a resident.
    const vars = (uidOf: string): string[] => (boards.find((b) => b.uid === uidOf)?.templating?.list ?? []).map((v) => v.name);
    expect(vars('carewatch-home')).toEqual(['home']);
    expect(vars('carewatch-resident')).toEqual(['home', 'resident']);
    // Alert annotations on the overview, home and resident dashboards.
    for (const id of ['carewatch-bureau', 'carewatch-home', 'carewatch-resident']) expect(boards.find((b) => b.uid === id)?.annotations?.list?.length, id).toBeGreaterThan(0);
  });

  it('names only measurements, tags and fields that the real processes wrote', async () => {
    for (const m of Object.keys(MEASUREMENTS) as Measurement[]) {
      const rp = 'rp' in MEASUREMENTS[m] ? `"${(MEASUREMENTS[m] as { rp: string }).rp}".` : '';
      const fields = new Set((await influxQuery(influx.url, influx.database, `SHOW FIELD KEYS FROM ${rp}"${m}"`)).flatMap((s) => s.values.map((v) => String(v[0]))));
      const tags = new Set((await influxQuery(influx.url, influx.database, `SHOW TAG KEYS FROM ${rp}"${m}"`)).flatMap((s) => s.values.map((v) => String(v[0]))));
      expect(fields.size, `measurement ${m} was written`).toBeGreaterThan(0);
      for (const q of queries()) {
        if (!q.query.includes(`FROM ${rp}"${m}"`)) continue;
        const select = /^SELECT (.*?) FROM /.exec(q.query)?.[1] ?? '';
        const groupBy = / GROUP BY (.*?)(?: fill\(|$)/.exec(q.query)?.[1] ?? '';
        const where = / WHERE (.*?)(?: GROUP BY | ORDER BY |$)/.exec(q.query)?.[1] ?? '';
        for (const [, name] of select.matchAll(/"([a-z0-9_]+)"/g)) expect(fields.has(name!), `${q.where}: field "${name}" of ${m}`).toBe(true);
        for (const [, name] of groupBy.matchAll(/"([a-z0-9_]+)"/g)) expect(tags.has(name!), `${q.where}: tag "${name}" of ${m}`).toBe(true);
        for (const [, name] of where.matchAll(/"([a-z0-9_]+)"/g)) expect(tags.has(name!) || fields.has(name!), `${q.where}: "${name}" of ${m}`).toBe(true);
      }
    }
  });

  it('runs every panel, variable and annotation query on the filled InfluxDB, each returning data', async () => {
    const all = queries();
    expect(all.length).toBeGreaterThan(30);
    const empty: string[] = [];
    for (const q of all) {
      const series = await influxQuery(influx.url, influx.database, substitute(q.query)).catch((err: Error) => {
        throw new Error(`${q.where}: ${err.message}\n${q.query}`);
      });
      if (series.length === 0) empty.push(`${q.where}: ${q.query}`);
    }
    expect(empty).toEqual([]);
  });
});
