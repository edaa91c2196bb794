import { describe, expect, it } from 'vitest';
import { troublesBreakdown, type OpenAlert } from '../../bench/connections100k.ts';

/**
 * The 100,000-device benchmark's account of the device troubles still open at its settle: which
 * rule and device kind hold it back, in how many homes, raised how long ago.
 */
describe('troublesBreakdown', () => {
  const now = 1_000_000;
  const kinds = new Map([
    ['h1-sd-1', 'smoke_detector'],
    ['h1-sd-2', 'smoke_detector'],
    ['h2-mcp', 'manual_call_point'],
  ]);
  const alert = (rule: string, homeId: string, raisedAgoS: number, deviceId?: string, signal = 'trouble'): OpenAlert => ({ rule, signal, homeId, raisedAt: now - raisedAgoS * 1000, message: { en: `${rule} text` }, ...(deviceId !== undefined ? { deviceId } : {}) });

  it('groups troubles by rule and device kind, largest first, and leaves other signals out', () => {
    const text = troublesBreakdown(
      [
        alert('device_offline', 'h1', 10, 'h1-sd-1'),
        alert('device_offline', 'h1', 30, 'h1-sd-2'),
        alert('device_offline', 'h2', 300, 'h2-mcp'),
        alert('home_comm_loss', 'h3', 50),
        alert('detector_alarm', 'h1', 5, 'h1-sd-1', 'alarm'),
      ],
      (id) => kinds.get(id),
      now,
    );
    expect(text).toMatch(/^4 open troubles: device_offline\/smoke_detector 2 in 1 homes, raised \d+\/30 s ago/);
    expect(text).toContain('device_offline/manual_call_point 1 in 1 homes, raised 300/300 s ago');
    expect(text).toContain('home_comm_loss/- 1 in 1 homes');
    expect(text).toContain('e.g. h2-mcp: device_offline text');
    expect(text).toContain('e.g. h3: home_comm_loss text');
    expect(text).not.toContain('detector_alarm');
  });

  it('names a device it does not know, and says when nothing is open', () => {
    expect(troublesBreakdown([alert('device_offline', 'h9', 1, 'ghost')], () => undefined, now)).toContain('device_offline/? 1');
    expect(troublesBreakdown([], () => undefined, now)).toBe('0 open troubles');
  });
});
