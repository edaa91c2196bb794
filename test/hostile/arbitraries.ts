import fc from 'fast-check';
import { DEVICE_KINDS } from '../../contract/device-kinds.ts';
import { METRICS } from '../../contract/metrics.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { deviceTopic } from '../../contract/topics.ts';

/**
 * fast-check generators of hostile device input, shared by the property tests and the fuzz run
 * (test/hostile/fuzz.test.ts, test/hostile/fuzz-run.ts): valid messages of real devices of a
 * registry, and mutations of them as a broken or malicious device would send.
 */

export interface DeviceMessageCase {
  readonly deviceId: string;
  readonly homeId: string;
  readonly topic: string;
  readonly body: Record<string, unknown>;
}

/** A message a real device of `registry` may send: its own topic, its kind's metrics and events, in range. */
export function validDeviceMessage(registry: RegistryIndex, now = 1_700_000_000_000, devices = registry.site.devices): fc.Arbitrary<DeviceMessageCase> {
  return fc.constantFrom(...devices).chain((d) => {
    const kind = DEVICE_KINDS[d.kind];
    const metric = fc.constantFrom(...kind.metrics).chain((name) => {
      const spec = METRICS[name];
      const value: fc.Arbitrary<number | boolean> = spec.type === 'boolean' ? fc.boolean() : fc.double({ min: spec.min, max: spec.max, noNaN: true });
      return value.map((v) => [name, v] as const);
    });
    const ts = fc.integer({ min: now - 60_000, max: now });
    const seq = fc.integer({ min: 0, max: 2 ** 31 });
    const telemetry = fc.record({ ts, seq, metrics: fc.uniqueArray(metric, { minLength: 1, maxLength: kind.metrics.length, selector: ([n]) => n }).map((m) => Object.fromEntries(m)) }).map((body) => ({ channel: 'telemetry' as const, body }));
    const status = fc.record({ ts, online: fc.boolean() }).map((body) => ({ channel: 'status' as const, body }));
    const channels = [telemetry, status];
    if (kind.events.length > 0) channels.push(fc.record({ ts, seq, type: fc.constantFrom(...kind.events) }).map((body) => ({ channel: 'event' as const, body })) as never);
    return fc.oneof(...channels).map(({ channel, body }) => ({ deviceId: d.id, homeId: d.homeId, topic: deviceTopic(d.homeId, d.id, channel), body: body as Record<string, unknown> }));
  });
}

/** Topics a hostile client may use: wildcards, unicode, other devices' and homes' ids, extra levels. */
export function hostileTopic(): fc.Arbitrary<string> {
  const level = fc.oneof(
    fc.constantFrom('carewatch', 'v1', 'v2', 'h01', 'h02', 'h01-sd-f1-corridor', 'h02-sd-f1-corridor', 'telemetry', 'event', 'status', 'command', 'alerts', 'incidents', '+', '#', '', 'ü', '😀', '\u0000', '..', 'a'.repeat(65)),
    fc.string({ maxLength: 12 }),
  );
  return fc.oneof(
    fc.array(level, { minLength: 1, maxLength: 7 }).map((ls) => ls.join('/')),
    fc.tuple(level, level, fc.constantFrom('telemetry', 'event', 'status', 'command')).map(([h, d, c]) => `carewatch/v1/${h}/${d}/${c}`),
  );
}

const enc = new TextEncoder();

/** Hostile replacements for one JSON value. */
export function hostileValue(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom('1e309', '-1e309', '-0', '"NaN"', 'NaN', 'Infinity', 'null', 'true', '[]', '{}', '""', '9007199254740993', '-1', '1.5', '"20"', '{"$ref":"#"}', '[' .repeat(200) + ']'.repeat(200)),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
  );
}

/** A valid message, mutated as a broken or malicious device would: bytes, structure, values or topic. */
export function mutatedPayload(m: DeviceMessageCase): fc.Arbitrary<{ topic: string; payload: Uint8Array; how: string }> {
  const text = JSON.stringify(m.body);
  const bytes = enc.encode(text);
  const keys = Object.keys(m.body);
  const metricKeys = Object.keys((m.body.metrics as Record<string, unknown> | undefined) ?? {});
  const same = (payload: Uint8Array, how: string): { topic: string; payload: Uint8Array; how: string } => ({ topic: m.topic, payload, how });
  return fc.oneof(
    fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
      const b = Uint8Array.from(bytes);
      b[i] = (b[i] ?? 0) ^ x;
      return same(b, 'flip');
    }),
    fc.nat({ max: bytes.length - 1 }).map((i) => same(bytes.subarray(0, i), 'truncate')),
    fc.tuple(fc.nat({ max: bytes.length }), fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80], [0x80], [0xe2, 0x82])).map(([i, bad]) =>
      same(Uint8Array.from([...bytes.subarray(0, i), ...bad, ...bytes.subarray(i)]), 'invalid-utf8'),
    ),
    fc.tuple(fc.constantFrom(...keys), hostileValue()).map(([k, v]) => same(enc.encode(text.replace(`"${k}":${JSON.stringify(m.body[k])}`, `"${k}":${v}`)), `value:${k}`)),
    fc.tuple(fc.constantFrom(...(metricKeys.length > 0 ? metricKeys : ['x'])), hostileValue()).map(([k, v]) =>
      same(enc.encode(text.replace(new RegExp(`"${k}":[^,}]*`), `"${k}":${v}`)), `metric:${k}`),
    ),
    fc.tuple(fc.string({ maxLength: 20 }), hostileValue()).map(([k, v]) => same(enc.encode(`${text.slice(0, -1)},${JSON.stringify(k)}:${v}}`), 'extra-field')),
    fc.integer({ min: 1, max: 12_000 }).map((n) => same(enc.encode(`{"ts":1,"seq":1,"metrics":{"temperature_c":${'['.repeat(n)}${']'.repeat(n)}}}`), 'deep')),
    fc.constant(same(new Uint8Array(0), 'empty')),
    hostileTopic().map((topic) => ({ topic, payload: bytes, how: 'topic' })),
  );
}
