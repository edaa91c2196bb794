import { describe, expect, it } from 'vitest';
import { decodeDeviceMessage } from '../../contract/device-message.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { deviceTimeNs, messageLine, rejectedLine, REJECTED_PAYLOAD_BYTES } from '../../ingest/points.ts';
import { demoRegistry } from '../support/registry.ts';

const registry = demoRegistry();

function line(homeId: string, deviceId: string, channel: 'telemetry' | 'event' | 'status', payload: unknown): string {
  const msg = decodeDeviceMessage(deviceTopic(homeId, deviceId, channel), Buffer.from(JSON.stringify(payload)), registry);
  if (!msg.ok) throw new Error(`test message rejected: ${msg.code} ${msg.reason}`);
  const r = messageLine(msg);
  if (!r.ok) throw new Error(`line rejected: ${r.rejection.code}`);
  return r.line;
}

// Escaping itself is tested with the one encoder: test/common/influx/line-protocol.test.ts.

describe('time', () => {
  it('is device ts in ms plus seq mod 1e6 in ns, exact beyond 2^53', () => {
    expect(deviceTimeNs(1_767_225_600_123, 42)).toBe('1767225600123000042');
    expect(deviceTimeNs(1_767_225_600_123, 3_000_007)).toBe('1767225600123000007');
    expect(deviceTimeNs(0, 5)).toBe('5');
  });
});

describe('messageLine', () => {
  it('maps telemetry with resident, room, float and boolean fields and an integer seq', () => {
    expect(line('h01', 'h01-bed-p01', 'telemetry', { ts: 1_767_225_600_000, seq: 7, metrics: { bed_occupied: true, heart_rate_bpm: 72 } })).toBe(
      'telemetry,device=h01-bed-p01,home=h01,kind=bed_sensor,resident=h01-p01,room=r101 bed_occupied=true,heart_rate_bpm=72,seq=7i 1767225600000000007',
    );
  });
  it('omits the resident tag for a device without one', () => {
    expect(line('h01', 'h01-sd-r101', 'telemetry', { ts: 1000, seq: 1, metrics: { temperature_c: 21.5, smoke_obscuration_pct_per_m: 0 } })).toBe(
      'telemetry,device=h01-sd-r101,home=h01,kind=smoke_detector,room=r101 temperature_c=21.5,smoke_obscuration_pct_per_m=0,seq=1i 1000000001',
    );
  });
  it('maps events with type tag and optional code, detail, ok', () => {
    expect(line('h01', 'h01-sd-r101', 'event', { ts: 2000, seq: 3, type: 'fault', code: 'E1', detail: 'chamber "dirty", see\\manual', ok: false })).toBe(
      'event,device=h01-sd-r101,home=h01,kind=smoke_detector,room=r101,type=fault seq=3i,code="E1",detail="chamber \\"dirty\\", see\\\\manual",ok=false 2000000003',
    );
  });
  it('maps status with online and reason at ts in ms, the ns part naming the state', () => {
    expect(line('h01', 'h01-sd-r101', 'status', { ts: 3000, online: false, reason: 'connection lost' })).toBe(
      'status,device=h01-sd-r101,home=h01,kind=smoke_detector online=false,reason="connection lost" 3000000001',
    );
  });
  it('keeps an online and an offline status of one millisecond apart (they overwrote each other), a redelivered one in place', () => {
    const at = (payload: object): string | undefined => line('h01', 'h01-sd-r101', 'status', payload).split(' ').at(-1);
    const times = [
      at({ ts: 3000, online: true }),
      at({ ts: 3000, online: false }),
      at({ ts: 3000, online: false, reason: 'disconnected' }),
      at({ ts: 3000, online: false, reason: 'connection_lost' }),
    ];
    expect(new Set(times).size).toBe(4);
    // Offline sorts after online within the millisecond; the same status again is the same point.
    expect(times[0]).toBe('3000000000');
    expect(times[3]).toBe('3000000003');
    expect(at({ ts: 3000, online: false, reason: 'connection_lost' })).toBe(times[3]);
  });
  it('refuses a ts InfluxDB cannot store with OUT_OF_RANGE instead of a failing write', () => {
    const msg = decodeDeviceMessage(deviceTopic('h01', 'h01-sd-r101', 'status'), Buffer.from(JSON.stringify({ ts: 9.3e12, online: true })), registry);
    if (!msg.ok) throw new Error('decoder rejected');
    const r = messageLine(msg);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.rejection.code).toBe('OUT_OF_RANGE');
  });
});

describe('rejectedLine', () => {
  it('stores code, home, device tags and topic, reason, payload cut to the bound', () => {
    const payload = Buffer.from('x'.repeat(REJECTED_PAYLOAD_BYTES + 100));
    const l = rejectedLine({ code: 'UNKNOWN_METRIC', reason: 'unknown metric "a b"', homeId: 'h01', deviceId: 'h01-sd-r101', topic: 't/x', payload, receivedMs: 5000, uniq: 1_000_123 });
    expect(l).toBe(`rejected,code=UNKNOWN_METRIC,device=h01-sd-r101,home=h01 payload="${'x'.repeat(REJECTED_PAYLOAD_BYTES)}",reason="unknown metric \\"a b\\"",topic="t/x" 5000000123`);
  });
  it('omits home and device when unknown and survives non-UTF-8 bytes', () => {
    const l = rejectedLine({ code: 'BAD_TOPIC', reason: 'r', topic: 'a', payload: Buffer.from([0xff, 0x22, 0x5c]), receivedMs: 1, uniq: 0 });
    expect(l).toBe('rejected,code=BAD_TOPIC payload="\ufffd\\"\\\\",reason="r",topic="a" 1000000');
  });
});

describe('out-of-range readings (issue 11)', () => {
  it('stores the limit on the danger side, the raw value next to it, and the flag; the other side only raw', () => {
    const hot = line('h01', 'h01-sd-r101', 'telemetry', { ts: 1_767_225_600_000, seq: 1, metrics: { temperature_c: 999, smoke_obscuration_pct_per_m: 0.1 } });
    expect(hot).toBe('telemetry,device=h01-sd-r101,home=h01,kind=smoke_detector,room=r101 temperature_c=200,smoke_obscuration_pct_per_m=0.1,seq=1i,temperature_c_raw=999,out_of_range="temperature_c" 1767225600000000001');
    const cold = line('h01', 'h01-sd-r101', 'telemetry', { ts: 1_767_225_600_000, seq: 2, metrics: { temperature_c: -80, smoke_obscuration_pct_per_m: -3 } });
    expect(cold).toBe('telemetry,device=h01-sd-r101,home=h01,kind=smoke_detector,room=r101 seq=2i,temperature_c_raw=-80,smoke_obscuration_pct_per_m_raw=-3,out_of_range="temperature_c,smoke_obscuration_pct_per_m" 1767225600000000002');
  });
});
