import { describe, expect, it } from 'vitest';
import { CSV_COLUMNS, isCareEmergency, isFireEmergency, latestVersions, monthOf, monthWindow, onlineFraction, onlineTime, percentile } from '../../../alerts/http/stats-compute.ts';
import type { AlertMessage } from '../../../contract/payloads.ts';

describe('stats core', () => {
  it('takes months in China Standard Time (UTC+8)', () => {
    const w = monthWindow('2026-11');
    expect(new Date(w.start).toISOString()).toBe('2026-10-31T16:00:00.000Z');
    expect(new Date(w.end).toISOString()).toBe('2026-11-30T16:00:00.000Z');
    expect(monthOf(w.start)).toBe('2026-11');
    expect(monthOf(w.start - 1)).toBe('2026-10');
    expect(monthWindow('2026-12').end).toBe(Date.UTC(2027, 0, 1) - 8 * 3_600_000);
    expect(() => monthWindow('2026-00')).toThrow(/YYYY-MM/);
  });

  it('uses nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5], 95)).toBe(5);
    expect(percentile([4, 1, 3, 2], 50)).toBe(2);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 95)).toBe(95);
    expect(percentile(hundred, 50)).toBe(50);
  });

  it('integrates online time from the state before the window and the changes inside it', () => {
    expect(onlineFraction(undefined, [], 0, 100)).toBeNull();
    expect(onlineFraction(true, [], 0, 100)).toBe(1);
    // First heard of at 25: counted from then, not as offline before it was installed.
    expect(onlineFraction(undefined, [{ ts: 25, online: true }], 0, 100)).toBe(1);
    expect(onlineFraction(undefined, [{ ts: 20, online: true }, { ts: 60, online: false }], 0, 100)).toBe(0.5);
    expect(onlineFraction(true, [{ ts: 60, online: false }, { ts: 40, online: false }, { ts: 50, online: true }], 0, 100)).toBe(0.5);
    expect(onlineFraction(true, [{ ts: 150, online: false }], 0, 100)).toBe(1);
  });

  it('keeps the highest version of each alert', () => {
    const a = (id: string, version: number) => ({ id, version }) as AlertMessage;
    expect(latestVersions([a('x', 1), a('x', 3), a('y', 1), a('x', 2)]).map((v) => `${v.id}${v.version}`).sort()).toEqual(['x3', 'y1']);
  });

  it('reports device time, so a device installed late weighs by the time it was there', () => {
    expect(onlineTime(undefined, [{ ts: 60, online: true }], 0, 100)).toEqual({ onlineMs: 40, observedMs: 40 });
    expect(onlineTime(true, [{ ts: 50, online: false }], 0, 100)).toEqual({ onlineMs: 50, observedMs: 100 });
    expect(onlineTime(undefined, [], 0, 100)).toBeNull();
  });

  it('tells fire and care emergencies from other alerts', () => {
    expect(isFireEmergency({ category: 'fire', signal: 'alarm', severity: 'critical' })).toBe(true);
    // An unverified smoke pre-alarm (medium) or a supervisory signal is not a fire emergency.
    expect(isFireEmergency({ category: 'fire', signal: 'alarm', severity: 'medium' })).toBe(false);
    expect(isFireEmergency({ category: 'fire', signal: 'supervisory', severity: 'critical' })).toBe(false);
    expect(isCareEmergency({ category: 'care', severity: 'critical' })).toBe(true);
    expect(isCareEmergency({ category: 'care', severity: 'high' })).toBe(false);
    expect(isCareEmergency({ category: 'fire', severity: 'critical' })).toBe(false);
  });

  it('has one CSV column per figure, each named once', () => {
    expect(new Set(CSV_COLUMNS).size).toBe(CSV_COLUMNS.length);
    expect(CSV_COLUMNS.slice(0, 3)).toEqual(['home', 'month', 'alerts']);
    expect(CSV_COLUMNS).toContain('missed_alerts');
    expect(CSV_COLUMNS).toContain('care_emergency_resolve_p95_s');
  });
});
