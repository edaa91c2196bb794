import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEVICE_KINDS } from '../../contract/device-kinds.ts';
import { REJECT_CODES, decodeDeviceMessage, type DeviceMessage, type Rejection } from '../../contract/device-message.ts';
import { METRICS, isMetricName } from '../../contract/metrics.ts';
import { DEVICE_CHANNELS, deviceTopic, alertsTopic, incidentsTopic, isValidId, parseTopic } from '../../contract/topics.ts';
import { toRuleInput } from '../../alerts/mqtt.ts';
import { messageLine, rejectedLine } from '../../ingest/points.ts';
import { demoRegistry } from '../support/registry.ts';
import { hostileTopic, mutatedPayload, validDeviceMessage } from './arbitraries.ts';

/**
 * Issue 12 "Hostile input": the MQTT boundary. Topics (contract/topics.ts parseTopic) and device
 * payloads (contract/device-message.ts decodeDeviceMessage, the payload validators of
 * contract/payloads.ts) as ingest (decode → line protocol, ingest/influx-writer.ts toItems) and the
 * alerts process (decode → toRuleInput, alerts/mqtt.ts handle) take them. For any bytes on any topic:
 * a valid value or a rejection with a code of the catalogue, never a throw; what passes is what the
 * contract allows; every line ingest would write is one line of InfluxDB line protocol.
 */
const registry = demoRegistry();
const RUNS = 300;
const codes = new Set<string>(REJECT_CODES);

/** A line of InfluxDB line protocol: no newline outside a quoted string field value. */
function isOneLine(line: string): boolean {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if ((c === '\n' || c === '\r') && !quoted) return false;
  }
  return !quoted && /^(telemetry|event|status|rejected)[, ]/.test(line) && / -?\d+$/.test(line);
}

/** What ingest and the alerts process do with one message; returns the decoded result. */
function throughBothPaths(topic: string, payload: Uint8Array): DeviceMessage | Rejection {
  const msg = decodeDeviceMessage(topic, payload, registry);
  if (!msg.ok) {
    expect(codes.has(msg.code), msg.code).toBe(true);
    expect(msg.reason.length).toBeGreaterThan(0);
    // The reason is logged and stored: bounded by the payload bound, never the whole input.
    expect(msg.reason.length).toBeLessThan(8192);
    expect(isOneLine(rejectedLine({ code: msg.code, reason: msg.reason, topic, payload, receivedMs: 1_700_000_000_000, uniq: 7, ...(msg.homeId ? { homeId: msg.homeId } : {}), ...(msg.deviceId ? { deviceId: msg.deviceId } : {}) }))).toBe(true);
    return msg;
  }
  // What passed is what the contract allows for this device.
  const parsed = parseTopic(topic);
  expect(parsed).toMatchObject({ kind: 'device', deviceId: msg.device.id, homeId: msg.device.homeId, channel: msg.channel });
  if (msg.channel === 'telemetry') {
    for (const [name, v] of Object.entries(msg.payload.metrics)) {
      expect(isMetricName(name) && (DEVICE_KINDS[msg.device.kind].metrics as readonly string[]).includes(name), name).toBe(true);
      if (isMetricName(name)) expect(typeof v).toBe(METRICS[name].type);
      if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);
    }
    for (const d of msg.dropped) expect(codes.has(d.code)).toBe(true);
  }
  const r = messageLine(msg);
  if (r.ok) expect(isOneLine(r.line), r.line).toBe(true);
  else expect(codes.has(r.rejection.code)).toBe(true);
  const input = toRuleInput(msg, 1_700_000_000_000);
  expect(input.type).toBe(msg.channel);
  expect('device' in input ? input.device.id : undefined).toBe(msg.device.id);
  return msg;
}

describe('MQTT topics (contract/topics.ts)', () => {
  it('parseTopic: any string gives null or ids that rebuild the same topic', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 120 }), hostileTopic()), (topic) => {
        const p = parseTopic(topic);
        if (p === null) return;
        expect(isValidId(p.homeId)).toBe(true);
        const rebuilt = p.kind === 'device' ? deviceTopic(p.homeId, p.deviceId, p.channel) : p.kind === 'alerts' ? alertsTopic(p.homeId) : incidentsTopic(p.homeId);
        expect(rebuilt).toBe(topic);
        expect(topic).not.toMatch(/[#+\u0000]/);
      }),
      { numRuns: 2000 },
    );
  });

  it('builders refuse, with a clear Error, any id that could carry a separator or wildcard', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom(...DEVICE_CHANNELS), (id, channel) => {
        let built: string | undefined;
        try {
          built = deviceTopic('h01', id, channel);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toMatch(/^invalid device id/);
          expect(isValidId(id)).toBe(false);
          return;
        }
        expect(isValidId(id)).toBe(true);
        expect(parseTopic(built)).toEqual({ kind: 'device', homeId: 'h01', deviceId: id, channel });
      }),
      { numRuns: 1000 },
    );
  });
});

describe('device payloads through the ingest and alerts decode paths', () => {
  it('valid messages of every demo device kind pass, unchanged in meaning', () => {
    fc.assert(
      fc.property(validDeviceMessage(registry), ({ topic, body }) => {
        const msg = throughBothPaths(topic, Buffer.from(JSON.stringify(body)));
        expect(msg.ok, JSON.stringify(msg)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('mutated valid messages (flipped bytes, truncation, invalid UTF-8, wrong types, extra fields, huge numbers) never throw', () => {
    fc.assert(
      fc.property(validDeviceMessage(registry).chain((m) => mutatedPayload(m)), ({ topic, payload }) => {
        throughBothPaths(topic, payload);
      }),
      { numRuns: 1500 },
    );
  });

  it('arbitrary bytes on arbitrary topics never throw', () => {
    fc.assert(
      fc.property(fc.oneof(hostileTopic(), fc.string({ maxLength: 100 })), fc.uint8Array({ maxLength: 5000 }), (topic, payload) => {
        throughBothPaths(topic, payload);
      }),
      { numRuns: RUNS },
    );
  });

  it('any JSON value as a payload gives SCHEMA or a valid message, never a throw', () => {
    const device = registry.device('h01-sd-f1-corridor');
    expect(device).toBeDefined();
    fc.assert(
      fc.property(fc.constantFrom('telemetry', 'event', 'status') as fc.Arbitrary<'telemetry' | 'event' | 'status'>, fc.jsonValue({ maxDepth: 4 }), (channel, value) => {
        const msg = throughBothPaths(deviceTopic('h01', 'h01-sd-f1-corridor', channel), Buffer.from(JSON.stringify(value) ?? 'null'));
        if (!msg.ok) expect(['SCHEMA', 'MALFORMED_JSON', 'OVERSIZED', 'EVENT_NOT_ALLOWED', 'CLOCK_SKEW', 'UNKNOWN_METRIC', 'METRIC_NOT_ALLOWED', 'WRONG_TYPE']).toContain(msg.code);
      }),
      { numRuns: RUNS },
    );
  });

  it('fixed hostile cases: 10k-deep nesting, 1 MB, 1e309, -0, NaN strings, other devices, wildcards', () => {
    const topic = deviceTopic('h01', 'h01-sd-f1-corridor', 'telemetry');
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    const cases: Array<[string, string | Uint8Array, string | true]> = [
      [topic, `{"ts":1,"seq":1,"metrics":{"temperature_c":${deep}}}`, 'OVERSIZED'],
      [topic, `{"ts":1,"seq":1,"metrics":{"temperature_c":${'['.repeat(1000)}${']'.repeat(1000)}}}`, 'SCHEMA'],
      [topic, Buffer.alloc(1 << 20, 0x7b), 'OVERSIZED'],
      [topic, '{"ts":1,"seq":1,"metrics":{"temperature_c":1e309}}', 'SCHEMA'],
      [topic, '{"ts":1,"seq":1,"metrics":{"temperature_c":-0}}', true],
      [topic, '{"ts":1,"seq":1,"metrics":{"temperature_c":"NaN"}}', 'SCHEMA'],
      [topic, '{"ts":1e309,"seq":1,"metrics":{"temperature_c":20}}', 'SCHEMA'],
      [topic, '{"ts":-0,"seq":-0,"metrics":{"temperature_c":20}}', true],
      [topic, '{"ts":1,"seq":1,"metrics":{"temperature_c":20},"extra":1}', 'SCHEMA'],
      [topic, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 'SCHEMA'],
      [topic, '{"ts":1,"seq":1,"metrics":{"__proto__":{"x":1},"temperature_c":20}}', 'SCHEMA'],
      [topic, '{"ts":1,"seq":1,"metrics":{"constructor":20,"temperature_c":20}}', true],
      ['carewatch/v1/h01/+/telemetry', '{}', 'BAD_TOPIC'],
      ['carewatch/v1/h01/#', '{}', 'BAD_TOPIC'],
      ['carewatch/v1/h01/h01-smöke/telemetry', '{}', 'BAD_TOPIC'],
      [deviceTopic('h02', 'h01-sd-f1-corridor', 'telemetry'), '{}', 'WRONG_HOME'],
      [deviceTopic('h01', 'h99-nobody', 'telemetry'), '{}', 'UNKNOWN_DEVICE'],
      [deviceTopic('h01', 'h01-sd-f1-corridor', 'command'), '{}', 'BAD_TOPIC'],
    ];
    for (const [t, p, want] of cases) {
      const msg = throughBothPaths(t, typeof p === 'string' ? Buffer.from(p) : p);
      if (want === true) expect(msg.ok, `${t} ${String(p).slice(0, 80)}: ${JSON.stringify(msg)}`).toBe(true);
      else expect(msg.ok ? 'ok' : msg.code, `${t} ${String(p).slice(0, 80)}`).toBe(want);
    }
  });
});
