import mqtt from 'mqtt';
import { deviceTopic } from '../../../contract/topics.ts';
import { influxQuery } from '../../support/influx-db.ts';

/** A few demo smoke detectors publishing numbered telemetry at QoS 1, and the exactly-once check. */

export const LOAD_DEVICES = [
  { homeId: 'h01', deviceId: 'h01-sd-r101' },
  { homeId: 'h02', deviceId: 'h02-sd-r101' },
  { homeId: 'h03', deviceId: 'h03-sd-r101' },
  { homeId: 'h04', deviceId: 'h04-sd-r101' },
] as const;

/** 2026-01-01: device ts = BASE_TS + seq ms, distinct per message. */
export const BASE_TS = Date.UTC(2026, 0, 1);

export interface Load {
  /** Messages the broker has acknowledged to the publishers. */
  published(): number;
  done: Promise<void>;
  close(): Promise<void>;
}

export async function publishLoad(url: string, total: number, window = 200): Promise<Load> {
  const perDevice = Math.ceil(total / LOAD_DEVICES.length);
  const clients = await Promise.all(
    LOAD_DEVICES.map((d) => mqtt.connectAsync(url, { clientId: d.deviceId, username: d.deviceId, password: `demo-${d.deviceId}`, protocolVersion: 4, reconnectPeriod: 200 })),
  );
  let published = 0;
  const done = Promise.all(
    clients.map(async (c, i) => {
      const d = LOAD_DEVICES[i] as (typeof LOAD_DEVICES)[number];
      const topic = deviceTopic(d.homeId, d.deviceId, 'telemetry');
      for (let start = 0; start < perDevice; start += window) {
        const batch: Promise<unknown>[] = [];
        for (let seq = start; seq < Math.min(perDevice, start + window); seq++) {
          const payload = JSON.stringify({ ts: BASE_TS + seq, seq, metrics: { temperature_c: 20 + (seq % 100) / 10, smoke_obscuration_pct_per_m: 0.1, battery_pct: 90 } });
          batch.push(c.publishAsync(topic, payload, { qos: 1 }).then(() => published++));
        }
        await Promise.all(batch);
      }
    }),
  ).then(() => undefined);
  return {
    published: () => published,
    done,
    async close() {
      await Promise.all(clients.map((c) => c.endAsync()));
    },
  };
}

/** Seq values stored per load device. */
export async function storedSeqs(url: string, db: string): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const d of LOAD_DEVICES) {
    const series = await influxQuery(url, db, `SELECT seq FROM "raw"."telemetry" WHERE device = '${d.deviceId}'`);
    out.set(d.deviceId, (series[0]?.values ?? []).map((v) => v[1] as number));
  }
  return out;
}

export async function storedCount(url: string, db: string): Promise<number> {
  const series = await influxQuery(url, db, 'SELECT count(seq) FROM "raw"."telemetry"');
  return (series[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

/** Every seq 0..perDevice-1 exactly once per device; returns a description of what is wrong, or ''. */
export function exactlyOnceProblems(seqs: Map<string, number[]>, total: number): string {
  const perDevice = Math.ceil(total / LOAD_DEVICES.length);
  const problems: string[] = [];
  for (const [device, list] of seqs) {
    const counts = new Map<number, number>();
    for (const s of list) counts.set(s, (counts.get(s) ?? 0) + 1);
    const dup = [...counts].filter(([, n]) => n > 1).map(([s]) => s);
    const missing: number[] = [];
    for (let s = 0; s < perDevice; s++) if (!counts.has(s)) missing.push(s);
    if (dup.length || missing.length || list.length !== perDevice) {
      problems.push(`${device}: ${list.length} stored, ${missing.length} missing (${missing.slice(0, 5).join(',')}), ${dup.length} duplicated`);
    }
  }
  return problems.join('; ');
}
