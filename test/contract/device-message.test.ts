import { describe, expect, it } from 'vitest';
import { decodeDeviceMessage } from '../../contract/device-message.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { demoRegistry } from '../support/registry.ts';

const registry = demoRegistry();
const bytes = (v: unknown): Uint8Array => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const smoke = deviceTopic('h01', 'h01-sd-r101', 'telemetry');

describe('decodeDeviceMessage', () => {
  it('accepts a valid reading as it is', () => {
    const m = decodeDeviceMessage(smoke, bytes({ ts: 1, seq: 1, metrics: { smoke_obscuration_pct_per_m: 0.1, temperature_c: 21 } }), registry);
    expect(m).toMatchObject({ ok: true, channel: 'telemetry', dropped: [], payload: { metrics: { smoke_obscuration_pct_per_m: 0.1, temperature_c: 21 } } });
  });

  it('keeps the valid metrics of a reading and lists the refused ones with their reasons', () => {
    // A heat element past its range in a real fire must not take the smoke reading down with it.
    const m = decodeDeviceMessage(smoke, bytes({ ts: 1, seq: 2, metrics: { smoke_obscuration_pct_per_m: 12.5, temperature_c: 20, spo2_pct: 97 } }), registry);
    if (!m.ok || m.channel !== 'telemetry') throw new Error(`expected telemetry, got ${JSON.stringify(m)}`);
    expect(m.payload.metrics).toEqual({ smoke_obscuration_pct_per_m: 12.5, temperature_c: 20 });
    expect(m.dropped.map((d) => d.code)).toEqual(['METRIC_NOT_ALLOWED']);
    expect(m.dropped[0]?.reason).toMatch(/spo2_pct/);
    expect(m.outOfRange).toEqual([]);
  });

  it('takes a heat reading past its range at the limit and flags it; a reading below range is kept out but flagged, not rejected', () => {
    // A heat element past its range in a real fire reads "at least 200 °C": an alarm-level reading, never dropped.
    const hot = decodeDeviceMessage(smoke, bytes({ ts: 1, seq: 2, metrics: { smoke_obscuration_pct_per_m: 12.5, temperature_c: 260 } }), registry);
    if (!hot.ok || hot.channel !== 'telemetry') throw new Error(`expected telemetry, got ${JSON.stringify(hot)}`);
    expect(hot.payload.metrics).toEqual({ smoke_obscuration_pct_per_m: 12.5, temperature_c: 200 });
    expect(hot.outOfRange).toEqual([{ metric: 'temperature_c', value: 260, side: 'above', limit: 200, atLimit: true }]);
    expect(hot.dropped).toEqual([]);
    const cold = decodeDeviceMessage(smoke, bytes({ ts: 1, seq: 3, metrics: { temperature_c: -90 } }), registry);
    if (!cold.ok || cold.channel !== 'telemetry') throw new Error(`expected telemetry, got ${JSON.stringify(cold)}`);
    expect(cold.payload.metrics).toEqual({});
    expect(cold.outOfRange).toEqual([{ metric: 'temperature_c', value: -90, side: 'below', limit: -40, atLimit: false }]);
  });

  it('rejects a reading none of whose metrics pass, with the first reason', () => {
    expect(decodeDeviceMessage(smoke, bytes({ ts: 1, seq: 3, metrics: { colour: 3 } }), registry)).toMatchObject({ ok: false, code: 'UNKNOWN_METRIC' });
    expect(decodeDeviceMessage(smoke, bytes({ ts: 1, seq: 3, metrics: { temperature_c: true } }), registry)).toMatchObject({ ok: false, code: 'WRONG_TYPE' });
  });

  it('rejects whole messages for problems of the message itself', () => {
    expect(decodeDeviceMessage(smoke, bytes('{"ts":'), registry)).toMatchObject({ ok: false, code: 'MALFORMED_JSON', deviceId: 'h01-sd-r101' });
    expect(decodeDeviceMessage(smoke, bytes({ ts: 1, metrics: { temperature_c: 1 } }), registry)).toMatchObject({ ok: false, code: 'SCHEMA' });
    expect(decodeDeviceMessage(deviceTopic('h02', 'h01-sd-r101', 'telemetry'), bytes({ ts: 1, seq: 1, metrics: { temperature_c: 1 } }), registry)).toMatchObject({ ok: false, code: 'WRONG_HOME' });
    expect(decodeDeviceMessage(deviceTopic('h01', 'h01-nope', 'telemetry'), bytes({}), registry)).toMatchObject({ ok: false, code: 'UNKNOWN_DEVICE' });
    expect(decodeDeviceMessage(smoke, new Uint8Array(5000), registry)).toMatchObject({ ok: false, code: 'OVERSIZED' });
    expect(decodeDeviceMessage('carewatch/v1/h01/h01-sd-r101/command', bytes({}), registry)).toMatchObject({ ok: false, code: 'BAD_TOPIC' });
    expect(decodeDeviceMessage(deviceTopic('h01', 'h01-sd-r101', 'event'), bytes({ ts: 1, seq: 1, type: 'fall' }), registry)).toMatchObject({ ok: false, code: 'EVENT_NOT_ALLOWED' });
  });
});
