import { describe, expect, it } from 'vitest';
import { CLOCK_WINDOW, decodeDeviceMessage } from '../../contract/device-message.ts';
import { MAX_DEVICE_PAYLOAD_BYTES } from '../../contract/payloads.ts';
import { deviceTopic, sharedFilter, FILTERS } from '../../contract/topics.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * ReceiveStamp `service` (contract/device-message.ts): behind a broker that stamps nothing
 * (Mosquitto), the service's own receive time takes the place of the broker's `brokerTs`.
 */
const registry = demoRegistry();
const bytes = (v: unknown): Uint8Array => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const telemetry = deviceTopic('h01', 'h01-sd-r101', 'telemetry');
const event = deviceTopic('h01', 'h01-mcp-f1-corridor', 'event');
const status = deviceTopic('h01', 'h01-sd-r101', 'status');
const T = Date.UTC(2026, 11, 5, 12, 0, 0);
const DAY = 86_400_000;

describe('receive stamp by the service', () => {
  it('stamps the receive time as brokerTs on every channel', () => {
    const r = decodeDeviceMessage(telemetry, bytes({ ts: T - 5, seq: 1, metrics: { smoke_obscuration_pct_per_m: 0.1 } }), registry, T);
    expect(r).toMatchObject({ ok: true, payload: { ts: T - 5, brokerTs: T } });
    const e = decodeDeviceMessage(event, bytes({ ts: T - 5, seq: 2, type: 'manual_call_point' }), registry, T);
    expect(e).toMatchObject({ ok: true, payload: { ts: T - 5, brokerTs: T } });
  });

  it("overwrites a brokerTs the device wrote itself, so it cannot move the clock window", () => {
    // A reading 10 days old with a forged stamp of the same time: inside the window by its own stamp.
    const forged = bytes({ ts: T - 10 * DAY, seq: 1, brokerTs: T - 10 * DAY, metrics: { smoke_obscuration_pct_per_m: 0.1 } });
    expect(decodeDeviceMessage(telemetry, forged, registry)).toMatchObject({ ok: true }); // taken as the broker's stamp
    expect(decodeDeviceMessage(telemetry, forged, registry, T)).toMatchObject({ ok: false, code: 'CLOCK_SKEW' });
    // An event outside the window is kept, at the service's receive time.
    const alarm = bytes({ ts: T + 3 * CLOCK_WINDOW.futureMs, seq: 3, type: 'manual_call_point', brokerTs: T + 3 * CLOCK_WINDOW.futureMs });
    expect(decodeDeviceMessage(event, alarm, registry, T)).toMatchObject({ ok: true, payload: { ts: T, brokerTs: T }, clockSkew: { side: 'future', deviceTs: T + 3 * CLOCK_WINDOW.futureMs } });
  });

  it("completes a will (no ts) as the broker would: offline, connection_lost, at the receive time", () => {
    expect(decodeDeviceMessage(status, bytes({ online: false }), registry)).toMatchObject({ ok: false, code: 'SCHEMA' });
    expect(decodeDeviceMessage(status, bytes({ online: false }), registry, T)).toMatchObject({ ok: true, payload: { ts: T, brokerTs: T, online: false, reason: 'connection_lost' } });
    // A will can never claim the device is up, and keeps a reason it gave.
    expect(decodeDeviceMessage(status, bytes({ online: true, reason: 'power_fail' }), registry, T)).toMatchObject({ ok: true, payload: { online: false, reason: 'power_fail' } });
    // A status the device sent itself keeps its own time and state.
    expect(decodeDeviceMessage(status, bytes({ ts: T - 1000, online: true }), registry, T)).toMatchObject({ ok: true, payload: { ts: T - 1000, online: true, brokerTs: T } });
  });

  it('bounds the payload at the device limit, with no room left for a broker stamp', () => {
    const pad = (n: number): Uint8Array => {
      const base = JSON.stringify({ ts: T, seq: 1, metrics: { smoke_obscuration_pct_per_m: 0.1 }, x: '' });
      return bytes(base.replace('"x":""', `"x":"${'a'.repeat(n - base.length)}"`));
    };
    expect(pad(MAX_DEVICE_PAYLOAD_BYTES + 1).byteLength).toBe(MAX_DEVICE_PAYLOAD_BYTES + 1);
    expect(decodeDeviceMessage(telemetry, pad(MAX_DEVICE_PAYLOAD_BYTES + 1), registry, T)).toMatchObject({ ok: false, code: 'OVERSIZED' });
    expect(decodeDeviceMessage(telemetry, pad(MAX_DEVICE_PAYLOAD_BYTES + 1), registry)).not.toMatchObject({ code: 'OVERSIZED' });
  });
});

describe('sharedFilter', () => {
  it('builds $share/{group}/{filter} and refuses a group that is not an id', () => {
    expect(sharedFilter('ingest', FILTERS.telemetry)).toBe('$share/ingest/carewatch/v1/+/+/telemetry');
    expect(() => sharedFilter('in/gest', FILTERS.telemetry)).toThrow(/share group/);
    expect(() => sharedFilter('+', FILTERS.telemetry)).toThrow(/share group/);
  });
});
