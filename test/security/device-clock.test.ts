import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createBroker, type Broker } from '../../broker/broker.ts';
import { createManualClock } from '../../common/clock.ts';
import { deviceTopic } from '../../contract/topics.ts';
import type { Ingest } from '../../ingest/ingest.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { startIngest } from '../ingest/support/ingest.ts';
import { captureLogger, waitFor } from '../ingest/support/wait.ts';
import { startPipeline, until, type Pipeline } from '../integration/support/pipeline.ts';

/**
 * Issue 12 "Hostile input": readings stamped 1970 (ts 0 or 1) were accepted and stored. Through the
 * real broker (which stamps `brokerTs` on the manual clock) into ingest and real InfluxDB: a 1970
 * reading is refused with CLOCK_SKEW, while a fire alarm from a device with a broken clock is stored
 * at the broker's time, flagged; and through the running alerts process it still raises the fire
 * alarm, at the broker's time (docs/protocol.md "Device clock").
 */
const T = Date.UTC(2026, 11, 5, 11);
const T_ISO = '2026-12-05T11:00:00.000Z';

describe('ingest: device clock outside the window', () => {
  let broker: Broker | undefined;
  let ingest: Ingest | undefined;
  const clients: MqttClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.endAsync();
    await ingest?.close();
    await broker?.close();
  });

  it('refuses a 1970 reading with CLOCK_SKEW and stores a fire alarm from a device with a broken clock at the broker time, flagged', async () => {
    const registry = demoRegistry();
    const clock = createManualClock(T);
    const { url, database } = testInflux('clock');
    broker = createBroker({ config: { host: '127.0.0.1', port: 0, wsPort: 0, production: false }, registry, logger: pino({ level: 'silent' }), now: () => clock.now() });
    await broker.start();
    const mqttUrl = `mqtt://127.0.0.1:${broker.tcpPort}`;
    const { logger, lines } = captureLogger('warn');
    ingest = await startIngest({ mqttUrl, influxUrl: url, influxDb: database }, logger);
    const connect = async (id: string): Promise<MqttClient> => {
      const c = await mqtt.connectAsync(mqttUrl, { clientId: id, username: id, password: `demo-${id}`, protocolVersion: 4, reconnectPeriod: 0 });
      clients.push(c);
      return c;
    };
    const sd = await connect('h01-sd-r101');
    const mcp = await connect('h01-mcp-f1-corridor');
    const smoke = deviceTopic('h01', 'h01-sd-r101', 'telemetry');
    await sd.publishAsync(smoke, JSON.stringify({ ts: 0, seq: 1, metrics: { smoke_obscuration_pct_per_m: 0.1 } }), { qos: 1 });
    await sd.publishAsync(smoke, JSON.stringify({ ts: 1, seq: 2, metrics: { smoke_obscuration_pct_per_m: 0.1 } }), { qos: 1 });
    await sd.publishAsync(smoke, JSON.stringify({ ts: T - 1000, seq: 3, metrics: { smoke_obscuration_pct_per_m: 0.1 } }), { qos: 1 });
    await mcp.publishAsync(deviceTopic('h01', 'h01-mcp-f1-corridor', 'event'), JSON.stringify({ ts: 0, seq: 4, type: 'manual_call_point' }), { qos: 1 });
    await mcp.publishAsync(deviceTopic('h01', 'h01-mcp-f1-corridor', 'status'), JSON.stringify({ ts: 1, online: true }), { qos: 1, retain: true });

    const stats = await waitFor('rejections and re-stamps counted', () => {
      const s = ingest?.stats();
      return s !== undefined && s.rejected.CLOCK_SKEW === 2 && s.clockSkew.event === 1 && s.clockSkew.status === 1 ? s : undefined;
    });
    expect(stats.rejectedTotal).toBe(2);

    // Only the reading inside the window is stored.
    const readings = await waitFor('the good reading', async () => {
      const s = await influxQuery(url, database, `SELECT seq FROM "raw"."telemetry" WHERE device = 'h01-sd-r101'`);
      return s[0]?.values.length === 1 ? s[0].values : undefined;
    });
    expect(readings).toEqual([[T - 1000, 3]]);
    const rejected = await waitFor('the refused readings', async () => {
      const s = await influxQuery(url, database, `SELECT code, reason, payload FROM "raw"."rejected" WHERE device = 'h01-sd-r101'`);
      return s[0]?.values.length === 2 ? s[0].values : undefined;
    });
    for (const [i, row] of rejected.entries()) {
      expect(row[1]).toBe('CLOCK_SKEW');
      expect(String(row[2])).toContain(new Date(i).toISOString());
      expect(String(row[2])).toContain(T_ISO);
      expect(String(row[3])).toContain(`"seq":${i + 1}`);
    }

    // The call point's alarm: stored at the broker's time, with what the device said.
    const events = await waitFor('the fire alarm event', async () => {
      const s = await influxQuery(url, database, `SELECT seq, device_ts, clock_skew, broker_ts FROM event WHERE device = 'h01-mcp-f1-corridor' AND type = 'manual_call_point'`);
      return s[0]?.values.length === 1 ? s[0].values : undefined;
    });
    expect(events).toEqual([[T, 4, 0, 'past', T]]);
    const statuses = await waitFor('the status', async () => {
      const s = await influxQuery(url, database, `SELECT online, device_ts, clock_skew FROM status WHERE device = 'h01-mcp-f1-corridor' AND device_ts >= 0`);
      return s[0]?.values.length === 1 ? s[0].values : undefined;
    });
    expect(statuses).toEqual([[T, true, 1, 'past']]);

    const refused = lines.filter((l) => l.msg === 'rejected message' && l.code === 'CLOCK_SKEW');
    expect(refused.length).toBe(2);
    expect(lines.filter((l) => l.msg === 'device clock outside the window: stored at the broker time, flagged').map((l) => l.code).sort()).toEqual(['event', 'status']);
  });
});

describe('alerts: a fire alarm from a device with a broken clock still reaches a person', () => {
  let p: Pipeline;
  afterAll(async () => {
    await p?.close();
  });

  it('raises the call point alarm at the broker time, and refuses the 1970 heat reading with CLOCK_SKEW in /health', async () => {
    p = await startPipeline('it_clock', { startMs: T });
    const staff = await p.watch('staff-h01');
    // A heat detector whose clock reset to 1970 reports 90 °C: refused as a reading (its own alarm decision is an event).
    const hd = await mqtt.connectAsync(p.mqttUrl, { clientId: 'h01-hd-kitchen', username: 'h01-hd-kitchen', password: 'demo-h01-hd-kitchen', protocolVersion: 4, reconnectPeriod: 0 });
    await hd.publishAsync(deviceTopic('h01', 'h01-hd-kitchen', 'telemetry'), JSON.stringify({ ts: 0, seq: 1, metrics: { temperature_c: 90 } }), { qos: 1 });
    const health = await until(async () => {
      const r = await p.alerts.app.inject({ url: '/health' });
      const body = r.json() as { deviceMessages?: { rejected: Record<string, number>; rejectedTotal: number } };
      return body.deviceMessages?.rejected.CLOCK_SKEW === 1 ? body.deviceMessages : undefined;
    }, 'the refused reading counted in /health');
    expect(health.rejectedTotal).toBe(1);
    await hd.endAsync();

    const mcp = await p.device('h01-mcp-f1-corridor');
    await mcp.event('manual_call_point', { ts: 0 });
    const fire = await until(() => staff.alerts.find((a) => a.rule === 'fire_confirmed' && a.roomId === 'f1-corridor'), 'the fire alarm on the staff socket');
    // Raised now, at the broker's stamp, not at 1970.
    expect(fire).toMatchObject({ homeId: 'h01', category: 'fire', signal: 'alarm', severity: 'critical', sourceTs: T, brokerTs: T, raisedAt: T });
    expect(staff.alerts.some((a) => a.rule.startsWith('heat'))).toBe(false);
    expect((p.alerts.stats().mqtt as { clockSkew: Record<string, number> }).clockSkew).toEqual({ event: 1 });
  });
});
