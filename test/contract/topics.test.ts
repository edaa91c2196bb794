import { describe, expect, it } from 'vitest';
import { alertsTopic, deviceTopic, isTelemetryTopic, parseTopic } from '../../contract/topics.ts';

describe('topics', () => {
  it('round-trips device topics', () => {
    const t = deviceTopic('h01', 'h01-sd-r101', 'telemetry');
    expect(t).toBe('carewatch/v1/h01/h01-sd-r101/telemetry');
    expect(parseTopic(t)).toEqual({ kind: 'device', homeId: 'h01', deviceId: 'h01-sd-r101', channel: 'telemetry' });
  });
  it('parses alerts topics', () => {
    expect(parseTopic(alertsTopic('h02'))).toEqual({ kind: 'alerts', homeId: 'h02' });
  });
  it('refuses ids with wildcards or separators', () => {
    expect(() => deviceTopic('h01', 'a/b', 'event')).toThrow(/invalid device id/);
    expect(() => deviceTopic('+', 'x', 'event')).toThrow(/invalid home id/);
  });
  it('rejects foreign topics', () => {
    for (const t of ['carewatch/v2/h01/d/telemetry', 'carewatch/v1/h01/d/other', 'carewatch/v1/h01/d/telemetry/x', 'x', 'carewatch/v1/#/d/event']) {
      expect(parseTopic(t)).toBeNull();
    }
  });
});

describe('isTelemetryTopic (the broker queues these behind alarm signals)', () => {
  it('is true for device telemetry only', () => {
    expect(isTelemetryTopic(deviceTopic('h01', 'h01-smoke-101', 'telemetry'))).toBe(true);
    for (const channel of ['event', 'status', 'command'] as const) expect(isTelemetryTopic(deviceTopic('h01', 'h01-smoke-101', channel))).toBe(false);
    expect(isTelemetryTopic(alertsTopic('h01'))).toBe(false);
    expect(isTelemetryTopic('other/v1/h01/d1/telemetry')).toBe(false);
    expect(isTelemetryTopic('$SYS/broker/telemetry')).toBe(false);
  });
});
