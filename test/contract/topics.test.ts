import { describe, expect, it } from 'vitest';
import { alertsTopic, deviceTopic, parseTopic } from '../../contract/topics.ts';

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
