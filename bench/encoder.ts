import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Point } from '@influxdata/influxdb-client';
import { toLine } from '../common/influx/line-protocol.ts';
import { parseRegistry } from '../common/registry-file.ts';
import { decodeDeviceMessage, type DeviceMessage } from '../contract/device-message.ts';
import { deviceTopic } from '../contract/topics.ts';
import { deviceTimeNs, messageLine } from '../ingest/points.ts';
import type { BenchContext, BenchResult, Benchmark, Row } from './lib/context.ts';
import { smokeTelemetry } from './lib/payload.ts';
import { median } from './lib/stats.ts';

/**
 * 8. Line-protocol encoder (issue 13): is @influxdata/influxdb-client's `Point` fast enough to be
 * the one encoder on ingest's hot path? Encodes the same N decoded telemetry readings (smoke
 * detectors of the demo site, the load generator's payloads) three ways, in one process, alternating
 * rounds, and reports the median rate of each:
 *  - ingest's hand-written string building (ingest/points.ts `messageLine`, the hot path today);
 *  - common/influx/line-protocol.ts `toLine`, the generic encoder the alerts process uses;
 *  - the reference: `new Point('telemetry').tag(…).floatField(…).intField('seq', …).timestamp(…)
 *    .toLineProtocol()`, building the same point.
 * Decoding and validation happen before the clock starts: only encoding is timed. Pure CPU, no
 * I/O: seconds, and safe to run on a shared machine (the ratio is what counts).
 */
type Ok = Extract<DeviceMessage, { ok: true; channel: 'telemetry' }>;

function readings(root: string, count: number): Ok[] {
  const path = join(root, 'config', 'demo-site.json');
  const registry = parseRegistry(readFileSync(path, 'utf8'), path);
  const detectors = registry.site.devices.filter((d) => d.kind === 'smoke_detector');
  const out: Ok[] = [];
  const ts = Date.UTC(2026, 0, 15);
  for (let i = 0; i < count; i++) {
    const d = detectors[i % detectors.length];
    if (d === undefined) throw new Error('the demo site has no smoke detectors');
    const msg = decodeDeviceMessage(deviceTopic(d.homeId, d.id, 'telemetry'), smokeTelemetry(i, ts + i), registry);
    if (!msg.ok || msg.channel !== 'telemetry') throw new Error(`bench payload refused: ${msg.ok ? msg.channel : msg.reason}`);
    out.push(msg);
  }
  return out;
}

function handLine(m: Ok): string {
  const r = messageLine(m);
  if (!r.ok) throw new Error(r.rejection.reason);
  return r.line;
}

function genericLine(m: Ok): string {
  const d = m.device;
  return toLine({
    measurement: 'telemetry',
    tags: { device: d.id, home: d.homeId, kind: d.kind, resident: d.residentId, room: d.roomId },
    fields: { ...m.payload.metrics, seq: { int: m.payload.seq } },
    timeNs: deviceTimeNs(m.payload.ts, m.payload.seq),
  });
}

function pointLine(m: Ok): string {
  const d = m.device;
  const p = new Point('telemetry').tag('device', d.id).tag('home', d.homeId).tag('kind', d.kind);
  if (d.residentId !== undefined) p.tag('resident', d.residentId);
  if (d.roomId !== undefined) p.tag('room', d.roomId);
  for (const [k, v] of Object.entries(m.payload.metrics)) {
    if (typeof v === 'boolean') p.booleanField(k, v);
    else if (typeof v === 'number') p.floatField(k, v);
  }
  p.intField('seq', m.payload.seq).timestamp(deviceTimeNs(m.payload.ts, m.payload.seq));
  const line = p.toLineProtocol();
  if (line === undefined) throw new Error('Point produced no line');
  return line;
}

/** Same point, whatever the order of its fields: `measurement,tags` + sorted fields + time. */
function canonical(line: string): string {
  const [series = '', fields = '', time = ''] = line.split(' ');
  return `${series} ${fields.split(',').sort().join(',')} ${time}`;
}

const ENCODERS = { hand: handLine, generic: genericLine, point: pointLine } as const;
type Name = keyof typeof ENCODERS;

export const encoderBenchmark: Benchmark = {
  name: 'encoder',
  title: 'Line-protocol encoding of telemetry: hand-written vs @influxdata/influxdb-client Point',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const count = ctx.quick ? 20_000 : 100_000;
    // 100,000 readings x (5 + 1 warm-up) rounds x 3 encoders: about half a minute on a loaded 2-core machine.
    const rounds = ctx.quick ? 3 : 5;
    const msgs = readings(ctx.root, count);
    // They must encode the same thing, or the comparison means nothing.
    for (const m of msgs.slice(0, 200)) {
      const want = canonical(handLine(m));
      for (const name of ['generic', 'point'] as const) {
        const got = canonical(ENCODERS[name](m));
        if (got !== want) throw new Error(`${name} encodes differently:\n  ${got}\n  ${want}`);
      }
    }
    const rates: Record<Name, number[]> = { hand: [], generic: [], point: [] };
    let sink = 0;
    for (let r = -1; r < rounds; r++) {
      // Alternate the order each round so neither gets the warmer JIT or the quieter second.
      const order: Name[] = r % 2 === 0 ? ['hand', 'generic', 'point'] : ['point', 'generic', 'hand'];
      for (const name of order) {
        const enc = ENCODERS[name];
        const t0 = performance.now();
        for (const m of msgs) sink += enc(m).length;
        const ms = performance.now() - t0;
        if (r >= 0) rates[name].push(count / (ms / 1000)); // round -1 warms up
      }
    }
    if (sink === 0) throw new Error('nothing encoded');
    const hand = median(rates.hand);
    const generic = median(rates.generic);
    const point = median(rates.point);
    ctx.log(`encoder: ${count} readings x ${rounds} rounds: hand ${hand.toFixed(0)}/s, generic ${generic.toFixed(0)}/s, Point ${point.toFixed(0)}/s`);
    const ref = { name: '@influxdata/influxdb-client Point.toLineProtocol()', value: point };
    const rows: Row[] = [
      { bench: 'encoder', metric: `hot path: ingest/points.ts messageLine, ${count} telemetry readings`, value: hand, unit: 'points/s', reference: ref, ratio: hand / point },
      { bench: 'encoder', metric: 'generic: common/influx/line-protocol.ts toLine (alerts)', value: generic, unit: 'points/s', reference: ref, ratio: generic / point },
      { bench: 'encoder', metric: 'Point: one 5,000-point ingest batch on the event loop', value: (5_000 / point) * 1000, unit: 'ms', reference: { name: 'hand-written', value: (5_000 / hand) * 1000 }, ratio: hand / point },
    ];
    return { rows, detail: { count, rounds, rates } };
  },
};
