import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { BROKER_STAMP_MAX_BYTES, MAX_DEVICE_PAYLOAD_BYTES } from '../../contract/payloads.ts';
import { deviceTopic } from '../../contract/topics.ts';
import type { Ingest } from '../../ingest/ingest.ts';
import { REJECTED_PAYLOAD_BYTES } from '../../ingest/points.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { startIngest } from './support/ingest.ts';
import { BASE_TS } from './support/load.ts';
import { captureLogger, waitFor } from './support/wait.ts';

let broker: TestBroker | undefined;
let ingest: Ingest | undefined;
let client: mqtt.MqttClient | undefined;

afterEach(async () => {
  await client?.endAsync();
  await ingest?.close();
  await broker?.close();
});

const DEV = { homeId: 'h01', deviceId: 'h01-sd-r101' };
const topic = deviceTopic(DEV.homeId, DEV.deviceId, 'telemetry');
const valid = (seq: number): string => JSON.stringify({ ts: BASE_TS + seq, seq, metrics: { temperature_c: 21, smoke_obscuration_pct_per_m: 0.1 } });

const BAD: Array<{ code: string; topic: string; payload: string | Buffer }> = [
  { code: 'MALFORMED_JSON', topic, payload: '{"ts": 1, "seq": ' },
  { code: 'UNKNOWN_METRIC', topic, payload: JSON.stringify({ ts: BASE_TS, seq: 1, metrics: { warp_factor: 9 } }) },
  { code: 'WRONG_TYPE', topic, payload: JSON.stringify({ ts: BASE_TS, seq: 1, metrics: { temperature_c: true } }) },
  { code: 'UNKNOWN_DEVICE', topic: deviceTopic('h01', 'h01-nobody', 'telemetry'), payload: valid(1) },
  // Past the device limit plus the broker's receive stamp (which only a carewatch broker adds).
  { code: 'OVERSIZED', topic, payload: Buffer.alloc(MAX_DEVICE_PAYLOAD_BYTES + BROKER_STAMP_MAX_BYTES + 1, 0x20) },
  { code: 'METRIC_NOT_ALLOWED', topic, payload: JSON.stringify({ ts: BASE_TS, seq: 1, metrics: { spo2_pct: 97 } }) },
  { code: 'SCHEMA', topic, payload: JSON.stringify({ ts: BASE_TS, metrics: { temperature_c: 20 } }) },
];

describe('ingest, acceptance: invalid messages', () => {
  it('rejects each kind with its code, counts and stores it, while valid messages keep flowing', async () => {
    const { url, database } = testInflux('rej');
    broker = await startTestBroker();
    const { logger, lines } = captureLogger('warn');
    ingest = await startIngest({ mqttUrl: broker.url, influxUrl: url, influxDb: database }, logger);
    client = await mqtt.connectAsync(broker.url, { clientId: 'tester', protocolVersion: 4 });
    let seq = 0;
    for (let round = 0; round < 3; round++) {
      for (const bad of BAD) {
        await client.publishAsync(topic, valid(seq++), { qos: 1 });
        await client.publishAsync(bad.topic, bad.payload, { qos: 1 });
      }
    }
    await client.publishAsync(topic, valid(seq++), { qos: 1 });

    await waitFor('valid ones stored', async () => {
      const s = await influxQuery(url, database, `SELECT count(seq) FROM "raw"."telemetry" WHERE device = '${DEV.deviceId}'`);
      return s[0]?.values[0]?.[1] === seq;
    });
    const stats = await waitFor('rejections counted', () => {
      const s = ingest?.stats();
      return s !== undefined && s.rejectedTotal === 3 * BAD.length ? s : undefined;
    });
    for (const bad of BAD) expect(stats.rejected[bad.code as keyof typeof stats.rejected], bad.code).toBe(3);

    const rows = await waitFor('rejected points', async () => {
      const s = await influxQuery(url, database, 'SELECT code, device, home, topic, reason, payload FROM "raw"."rejected"');
      const values = s[0]?.values ?? [];
      return values.length === 3 * BAD.length ? values : undefined;
    });
    const byCode = new Map(rows.map((r) => [r[1] as string, r]));
    for (const bad of BAD) {
      const row = byCode.get(bad.code);
      expect(row, bad.code).toBeDefined();
      expect(row?.[4]).toBe(bad.topic);
      expect(String(row?.[5]).length, bad.code).toBeGreaterThan(0);
    }
    expect(String(byCode.get('OVERSIZED')?.[6]).length).toBe(REJECTED_PAYLOAD_BYTES);
    expect(byCode.get('UNKNOWN_DEVICE')?.[2]).toBe('h01-nobody');
    expect(byCode.get('MALFORMED_JSON')?.[3]).toBe('h01');
    // Logged with topic and reason.
    const logged = lines.filter((l) => l.msg === 'rejected message');
    expect(new Set(logged.map((l) => l.code))).toEqual(new Set(BAD.map((b) => b.code)));
    expect(logged[0]?.topic).toBeTypeOf('string');
    expect(logged[0]?.reason).toBeTypeOf('string');
  });

  it('stores out-of-range readings flagged (the limit on the danger side, the raw value always), counts and logs them, rejects none', async () => {
    const { url, database } = testInflux('oor');
    broker = await startTestBroker();
    const { logger, lines } = captureLogger('warn');
    ingest = await startIngest({ mqttUrl: broker.url, influxUrl: url, influxDb: database }, logger);
    client = await mqtt.connectAsync(broker.url, { clientId: 'tester', protocolVersion: 4 });
    const gas = deviceTopic('h01', 'h01-gd-kitchen', 'telemetry');
    await client.publishAsync(topic, JSON.stringify({ ts: BASE_TS + 1, seq: 1, metrics: { temperature_c: 999, smoke_obscuration_pct_per_m: 0.1 } }), { qos: 1 });
    // Below range, and nothing else in the reading: still stored (raw, flagged), not rejected.
    await client.publishAsync(topic, JSON.stringify({ ts: BASE_TS + 2, seq: 2, metrics: { temperature_c: -80 } }), { qos: 1 });
    await client.publishAsync(gas, JSON.stringify({ ts: BASE_TS + 3, seq: 3, metrics: { gas_lel_pct: 140 } }), { qos: 1 });
    await client.publishAsync(topic, valid(4), { qos: 1 });

    const rows = await waitFor('flagged points', async () => {
      const s = await influxQuery(url, database, `SELECT temperature_c, temperature_c_raw, smoke_obscuration_pct_per_m, gas_lel_pct, gas_lel_pct_raw, out_of_range, seq FROM "raw"."telemetry" WHERE home = 'h01'`);
      const values = s[0]?.values ?? [];
      // All four, and the three flagged ones with their flag. Once (CI, session 7; not reproduced in 12
      // local runs) the four rows came back with seq 1's out_of_range null although its _raw field,
      // written in the same line, was there: InfluxDB 1.x keeps each field of a point as its own series in
      // its cache, so a query during the write can see part of a point. Waited for; never there fails.
      return values.length === 4 && values.filter((v) => v[6] !== null).length === 3 ? values : undefined;
    });
    const bySeq = new Map(rows.map((r) => [r[7] as number, r.slice(1, 7)]));
    expect(bySeq.get(1)).toEqual([200, 999, 0.1, null, null, 'temperature_c']);
    expect(bySeq.get(2)).toEqual([null, -80, null, null, null, 'temperature_c']);
    expect(bySeq.get(3)).toEqual([null, null, null, 100, 140, 'gas_lel_pct']);
    expect(bySeq.get(4)).toEqual([21, null, 0.1, null, null, null]);
    const stats = await waitFor('counted', () => {
      const s = ingest?.stats();
      return s !== undefined && s.outOfRangeTotal === 3 ? s : undefined;
    });
    expect(stats.outOfRange).toEqual({ temperature_c: 2, gas_lel_pct: 1 });
    expect(stats.rejectedTotal).toBe(0);
    const logged = lines.filter((l) => l.msg === 'out-of-range reading stored, flagged');
    expect(logged.map((l) => l.code)).toEqual(['temperature_c', 'temperature_c', 'gas_lel_pct']);
    expect(logged[0]?.reason).toContain('temperature_c=999 above the range limit 200; stored and evaluated at the limit 200');
  });

  it('records points InfluxDB refuses (field type conflict) as INFLUX_REJECTED without wedging', async () => {
    const { url, database } = testInflux('conflict');
    broker = await startTestBroker();
    ingest = await startIngest({ mqttUrl: broker.url, influxUrl: url, influxDb: database });
    await waitFor('database and retention policies created', async () => (await influxQuery(url, database, `SHOW RETENTION POLICIES ON "${database}"`).catch(() => [])).some((s) => s.values.some((v) => v[0] === 'raw')));
    // Someone stored temperature_c as a string in this shard: every later float write of it conflicts.
    const seed = await fetch(`${url}/write?db=${database}&precision=ms&rp=raw`, { method: 'POST', body: `telemetry,device=seed temperature_c="hot" ${BASE_TS}` });
    expect(seed.status).toBe(204);
    client = await mqtt.connectAsync(broker.url, { clientId: 'tester', protocolVersion: 4 });
    const other = deviceTopic('h01', 'h01-hd-kitchen', 'telemetry');
    for (let seq = 0; seq < 20; seq++) {
      await client.publishAsync(topic, valid(seq), { qos: 1 });
      await client.publishAsync(other, JSON.stringify({ ts: BASE_TS + seq, seq, metrics: { battery_pct: 80 } }), { qos: 1 });
    }
    const stats = await waitFor('conflicts rejected', () => {
      const s = ingest?.stats();
      return s !== undefined && s.rejected.INFLUX_REJECTED === 20 && s.spool.bytes === 0 ? s : undefined;
    });
    expect(stats.rejectedTotal).toBe(20);
    const ok = await influxQuery(url, database, `SELECT count(battery_pct) FROM "raw"."telemetry" WHERE device = 'h01-hd-kitchen'`);
    expect(ok[0]?.values[0]?.[1]).toBe(20);
    const rej = await influxQuery(url, database, `SELECT count(reason) FROM "raw"."rejected" WHERE code = 'INFLUX_REJECTED'`);
    expect(rej[0]?.values[0]?.[1]).toBe(20);
  });
});
