import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroker, type Broker } from '../../broker/broker.ts';
import { deviceTopic } from '../../contract/topics.ts';
import type { Ingest } from '../../ingest/ingest.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { startIngest } from '../ingest/support/ingest.ts';
import { exactlyOnceProblems, LOAD_DEVICES } from '../ingest/support/load.ts';
import { waitFor } from '../ingest/support/wait.ts';

/**
 * carewatch's own broker in front of ingest, with events and telemetry interleaved at load. svc-ingest
 * subscribes to both channels; session 2 briefly gave the broker a priority lane for events, and
 * aedes' per-client dedupe (by broker counter) then silently dropped every telemetry message an
 * event had overtaken. The ingest tests run on a plain aedes and send one channel, so nothing
 * caught it. Here every message, of either kind, must be stored exactly once.
 */
const PER_DEVICE = 4_000;
const WINDOW = 400;
/** Every EVENT_EVERY-th message of a device is an event, the rest telemetry; one seq space per device. */
const EVENT_EVERY = 4;
/**
 * Start of today (UTC), not load.ts's fixed 2026-01-01: the real broker stamps its own time, and a
 * reading more than 7 days older than that stamp is refused (contract/device-message.ts CLOCK_WINDOW).
 */
const BASE_TS = Math.floor(Date.now() / 86_400_000) * 86_400_000;

let broker: Broker | undefined;
let ingest: Ingest | undefined;

afterEach(async () => {
  await ingest?.close();
  await broker?.close();
});

/** Seqs stored per load device, events and telemetry together (one seq space per device). */
async function storedSeqs(url: string, db: string): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const d of LOAD_DEVICES) {
    const seqs: number[] = [];
    // Readings in the raw retention policy, events in the default (records) one: common/influx-schema.ts.
    for (const m of ['"raw"."telemetry"', 'event']) {
      const series = await influxQuery(url, db, `SELECT seq FROM ${m} WHERE device = '${d.deviceId}'`);
      for (const v of series[0]?.values ?? []) seqs.push(v[1] as number);
    }
    out.set(d.deviceId, seqs);
  }
  return out;
}

describe('broker + ingest, events and telemetry interleaved at load', () => {
  it('stores every message of both kinds exactly once', async () => {
    const registry = demoRegistry();
    const { url, database } = testInflux('mixed');
    // A small mqemitter concurrency, so most of the load waits in the broker's queue: the queue is
    // where a reordering would happen.
    broker = createBroker({ config: { host: '127.0.0.1', port: 0, wsPort: 0, production: false, limits: { mqConcurrency: 20 } }, registry, logger: pino({ level: 'silent' }) });
    await broker.start();
    const mqttUrl = `mqtt://127.0.0.1:${broker.tcpPort}`;
    ingest = await startIngest({ mqttUrl, influxUrl: url, influxDb: database });

    const clients = await Promise.all(LOAD_DEVICES.map((d) => mqtt.connectAsync(mqttUrl, { clientId: d.deviceId, username: d.deviceId, password: `demo-${d.deviceId}`, protocolVersion: 4, reconnectPeriod: 0 })));
    await Promise.all(
      clients.map(async (c, i) => {
        const d = LOAD_DEVICES[i] as (typeof LOAD_DEVICES)[number];
        for (let start = 0; start < PER_DEVICE; start += WINDOW) {
          const batch: Promise<unknown>[] = [];
          for (let seq = start; seq < Math.min(PER_DEVICE, start + WINDOW); seq++) {
            const ts = BASE_TS + seq;
            const [channel, body] =
              seq % EVENT_EVERY === 0
                ? (['event', { ts, seq, type: 'self_test', ok: true }] as const)
                : (['telemetry', { ts, seq, metrics: { temperature_c: 21, smoke_obscuration_pct_per_m: 0.1, battery_pct: 90 } }] as const);
            batch.push(c.publishAsync(deviceTopic(d.homeId, d.deviceId, channel), JSON.stringify(body), { qos: 1 }));
          }
          await Promise.all(batch);
        }
      }),
    );
    await Promise.all(clients.map((c) => c.endAsync()));

    const total = PER_DEVICE * LOAD_DEVICES.length;
    // `received` also counts the devices' online/offline statuses the broker publishes. A timeout is
    // not the failure: the check below names what is missing.
    const s = (): ReturnType<Ingest['stats']> | undefined => ingest?.stats();
    await waitFor('ingest to receive and store every message', () => (s()?.received ?? 0) >= total && s()?.acked === s()?.received && s()?.spool.bytes === 0, 30_000, 100).catch(() => undefined);
    expect(exactlyOnceProblems(await storedSeqs(url, database), total)).toBe('');
    expect(ingest.stats().rejectedTotal).toBe(0);
  });
});
