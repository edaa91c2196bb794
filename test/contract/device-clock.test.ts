import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CLOCK_WINDOW, clockSkew, decodeDeviceMessage } from '../../contract/device-message.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * Issue 12 "Hostile input": readings stamped 1970 (ts 0 or 1) were accepted and stored. The decoder
 * judges a device's `ts` against the broker's receive stamp (`brokerTs`): inside the window the
 * message decodes unchanged; outside it a reading is refused with CLOCK_SKEW and an event or status
 * is taken at the broker's time, flagged (contract/device-message.ts CLOCK_WINDOW).
 */
const registry = demoRegistry();
const bytes = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));
const smoke = deviceTopic('h01', 'h01-sd-r101', 'telemetry');
const smokeStatus = deviceTopic('h01', 'h01-sd-r101', 'status');
const callPoint = deviceTopic('h01', 'h01-mcp-f1-corridor', 'event');
const bed = deviceTopic('h01', 'h01-bed-p01', 'event');
const nurseCall = deviceTopic('h01', 'h01-nc-p01', 'event');
/** The broker's receive time for these tests: 2026-12-05T11:00:00Z. */
const B = Date.UTC(2026, 11, 5, 11);
const { futureMs, pastMs } = CLOCK_WINDOW;
/** The largest ts the schema allows (and the Date range). */
const MAX_TS = 8.64e15;

/** `brokerTs: null` sends no broker stamp. */
const reading = (ts: number, brokerTs: number | null = B): Uint8Array => bytes({ ts, seq: 7, metrics: { smoke_obscuration_pct_per_m: 0.1 }, ...(brokerTs !== null ? { brokerTs } : {}) });
const alarm = (ts: number, type = 'manual_call_point', brokerTs = B): Uint8Array => bytes({ ts, seq: 8, type, brokerTs });

describe('device clock window', () => {
  it('is 1 hour ahead and 7 days behind the broker stamp', () => {
    expect(futureMs).toBe(3_600_000);
    expect(pastMs).toBe(7 * 86_400_000);
  });

  it('refuses readings stamped 1970 (ts 0 and 1) with CLOCK_SKEW and a reason naming both times', () => {
    for (const ts of [0, 1]) {
      const m = decodeDeviceMessage(smoke, reading(ts), registry);
      expect(m).toMatchObject({ ok: false, code: 'CLOCK_SKEW', homeId: 'h01', deviceId: 'h01-sd-r101' });
      if (m.ok) throw new Error('accepted');
      expect(m.reason).toContain(new Date(ts).toISOString());
      expect(m.reason).toContain('2026-12-05T11:00:00.000Z');
      expect(m.reason).toContain(`ts ${ts}`);
      expect(m.reason).toContain(`brokerTs ${B}`);
    }
  });

  it('takes readings at both edges of the window as they are, and refuses them one ms outside', () => {
    for (const ts of [B - pastMs, B, B + futureMs]) {
      const m = decodeDeviceMessage(smoke, reading(ts), registry);
      expect(m, String(ts - B)).toMatchObject({ ok: true, channel: 'telemetry', payload: { ts, brokerTs: B } });
    }
    const late = decodeDeviceMessage(smoke, reading(B - pastMs - 1), registry);
    expect(late).toMatchObject({ ok: false, code: 'CLOCK_SKEW' });
    expect(late.ok ? '' : late.reason).toMatch(/7 days before the broker's receive time/);
    const early = decodeDeviceMessage(smoke, reading(B + futureMs + 1), registry);
    expect(early).toMatchObject({ ok: false, code: 'CLOCK_SKEW' });
    expect(early.ok ? '' : early.reason).toMatch(/1\.0 h after the broker's receive time/);
    // Local time sent as UTC by a device in China: 8 h ahead.
    expect(decodeDeviceMessage(smoke, reading(B + 8 * 3_600_000), registry)).toMatchObject({ ok: false, code: 'CLOCK_SKEW' });
  });

  it('never drops a fire alarm, call, SOS or fall from a device with a broken clock: taken at the broker time, flagged', () => {
    const cases: Array<[string, string]> = [
      [callPoint, 'manual_call_point'],
      [nurseCall, 'sos_button'],
      [bed, 'fall'],
      [bed, 'sos_button'],
      [deviceTopic('h01', 'h01-sd-r101', 'event'), 'detector_alarm'],
    ];
    for (const [topic, type] of cases) {
      for (const ts of [0, 1, B + futureMs + 1, B - pastMs - 1]) {
        const m = decodeDeviceMessage(topic, alarm(ts, type), registry);
        expect(m, `${type} ts ${ts}`).toMatchObject({ ok: true, channel: 'event', payload: { ts: B, brokerTs: B, type, seq: 8 }, clockSkew: { deviceTs: ts, brokerTs: B, side: ts < B ? 'past' : 'future' } });
        if (!m.ok || m.channel !== 'event') throw new Error('not an event');
        expect(m.clockSkew?.reason).toContain(new Date(ts).toISOString());
      }
    }
  });

  it('takes an event inside the window at its own time, unflagged', () => {
    const m = decodeDeviceMessage(callPoint, alarm(B - 60_000), registry);
    expect(m).toMatchObject({ ok: true, channel: 'event', payload: { ts: B - 60_000 } });
    expect(m.ok && m.channel === 'event' ? m.clockSkew : 'x').toBeUndefined();
  });

  it('takes a status from a device with a broken clock at the broker time, flagged', () => {
    const m = decodeDeviceMessage(smokeStatus, bytes({ ts: 0, online: true, brokerTs: B }), registry);
    expect(m).toMatchObject({ ok: true, channel: 'status', payload: { ts: B, online: true }, clockSkew: { deviceTs: 0, side: 'past' } });
    const ok = decodeDeviceMessage(smokeStatus, bytes({ ts: B - 5, online: true, brokerTs: B }), registry);
    expect(ok).toMatchObject({ ok: true, channel: 'status', payload: { ts: B - 5 } });
    expect(ok.ok && ok.channel === 'status' ? ok.clockSkew : 'x').toBeUndefined();
  });

  it('does not judge a message without a broker stamp (there is no platform time to judge it by)', () => {
    expect(decodeDeviceMessage(smoke, reading(0, null), registry)).toMatchObject({ ok: true, payload: { ts: 0 } });
  });

  it('property: any ts inside the window decodes unchanged; any outside is refused (reading) or re-stamped (event, status)', () => {
    const broker = fc.integer({ min: pastMs + 1, max: MAX_TS - futureMs - 1 });
    const inside = broker.chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: b - pastMs, max: b + futureMs })));
    const outside = broker.chain((b) => fc.tuple(fc.constant(b), fc.oneof(fc.integer({ min: 0, max: b - pastMs - 1 }), fc.integer({ min: b + futureMs + 1, max: MAX_TS }))));
    fc.assert(
      fc.property(inside, ([b, ts]) => {
        const r = decodeDeviceMessage(smoke, reading(ts, b), registry);
        const e = decodeDeviceMessage(callPoint, alarm(ts, 'manual_call_point', b), registry);
        const s = decodeDeviceMessage(smokeStatus, bytes({ ts, online: true, brokerTs: b }), registry);
        expect(r).toMatchObject({ ok: true, payload: { ts } });
        expect(e).toMatchObject({ ok: true, payload: { ts } });
        expect(s).toMatchObject({ ok: true, payload: { ts } });
        expect(e.ok && e.channel === 'event' ? e.clockSkew : 'x').toBeUndefined();
        expect(clockSkew(ts, b)).toBeUndefined();
      }),
    );
    fc.assert(
      fc.property(outside, ([b, ts]) => {
        const r = decodeDeviceMessage(smoke, reading(ts, b), registry);
        expect(r).toMatchObject({ ok: false, code: 'CLOCK_SKEW' });
        const e = decodeDeviceMessage(callPoint, alarm(ts, 'manual_call_point', b), registry);
        expect(e).toMatchObject({ ok: true, channel: 'event', payload: { ts: b }, clockSkew: { deviceTs: ts, brokerTs: b } });
        const s = decodeDeviceMessage(smokeStatus, bytes({ ts, online: false, brokerTs: b }), registry);
        expect(s).toMatchObject({ ok: true, channel: 'status', payload: { ts: b, online: false }, clockSkew: { deviceTs: ts } });
      }),
    );
  });
});
