import { describe, expect, it } from 'vitest';
import { DEVICE_KINDS } from '../../../../contract/device-kinds.ts';
import { demoRegistry } from '../../../support/registry.ts';
import { createNoDataRule } from '../../../../alerts/rules/care/no-data-rule.ts';
import { DAY, NORMAL_VITALS, S, cleared, merge, run, status, stream, ticks } from './streams.ts';

const rule = createNoDataRule();
const VS = 'h01-vs-p01';
const BED = 'h01-bed-p01';
const budget = DEVICE_KINDS.vital_signs_monitor.heartbeatBudgetS * S;

/** All of h01-p01's monitors report until `vsStopS`; the bed sensor and wetness sensor keep going. */
function scenario(vsStopS: number, totalS: number, occupied = true) {
  return merge(
    stream(VS, DAY, DAY + vsStopS * S, () => NORMAL_VITALS),
    stream(BED, DAY, DAY + totalS * S, () => ({ bed_occupied: occupied, movement_index: 5 })),
    stream('h01-wet-p01', DAY, DAY + totalS * S, () => ({ wetness_pct: 3 }), 30 * S),
    ticks(DAY, DAY + totalS * S, 5 * S),
  );
}

function only(signals: ReturnType<typeof run>['signals'], deviceId: string) {
  return signals.filter((s) => s.deviceId === deviceId);
}

describe('no data from a care monitor', () => {
  it('a vital-signs monitor that falls silent with the resident in bed raises a device alert within its heartbeat budget', () => {
    const { log } = run(rule, scenario(60, 180), { persist: true });
    const mine = log.filter((l) => l.signal.deviceId === VS);
    expect(mine).toHaveLength(1);
    const lastReading = DAY + 55 * S;
    const at = mine[0]?.now as number;
    expect(at - lastReading).toBeLessThanOrEqual(budget);
    expect(at - lastReading).toBeGreaterThan(budget - 2 * 5 * S);
    expect(mine[0]?.signal).toMatchObject({ key: 'care_no_data:h01-vs-p01', category: 'device', signal: 'trouble', residentId: 'h01-p01', active: true });
  });

  it('clears when the monitor sends again', () => {
    const first = run(rule, scenario(60, 180));
    const back = run(rule, stream(VS, DAY + 180 * S, DAY + 185 * S, () => NORMAL_VITALS), { state: first.state });
    expect(cleared(back.signals).map((s) => s.key)).toEqual(['care_no_data:h01-vs-p01']);
  });

  it('no alert when the resident is out of bed', () => {
    expect(only(run(rule, scenario(60, 180, false)).signals, VS)).toEqual([]);
  });

  it('an offline status does not count as hearing from the device', () => {
    const inputs = merge(scenario(60, 180), [status(VS, DAY + 70 * S, false)]);
    expect(only(run(rule, inputs).signals, VS)).toHaveLength(1);
  });

  it('a care monitor never heard from is silent since the rule started; fire devices are not this rule\'s business', () => {
    const { signals } = run(rule, scenario(180, 180));
    const registry = demoRegistry();
    expect(only(signals, 'h01-vs-p02')).toHaveLength(1);
    expect(signals.length).toBeGreaterThan(0);
    for (const s of signals) expect(DEVICE_KINDS[registry.device(s.deviceId as string)?.kind ?? 'smoke_detector'].category).toBe('care');
    expect(only(signals, VS)).toEqual([]);
  });
});
