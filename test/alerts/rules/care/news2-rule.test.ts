import { describe, expect, it } from 'vitest';
import { createNews2Rule, news2Scores } from '../../../../alerts/rules/care/news2-rule.ts';
import { DAY, MIN, NORMAL_VITALS, S, action, active, cleared, merge, run, stream, tick } from './streams.ts';

const rule = createNews2Rule();
const VS = 'h01-vs-p01';

function vitals(deviceId: string, metrics: (o: number) => Record<string, number | boolean>, seconds = 120) {
  return stream(deviceId, DAY, DAY + seconds * S, metrics);
}

describe('NEWS2 rule', () => {
  it('scores each resident continuously from their devices; partial until staff record oxygen and consciousness', () => {
    const { state, signals } = run(rule, vitals(VS, () => ({ ...NORMAL_VITALS, systolic_bp_mmhg: 128 })));
    expect(signals).toEqual([]);
    const score = news2Scores(state)['h01-p01'];
    expect(score).toMatchObject({ aggregate: 0, partial: true, missing: ['air_or_oxygen', 'consciousness'], risk: 'low', ts: DAY + 115 * S });
    expect(score?.components.pulse).toEqual({ value: 72, score: 0 });

    const after = run(rule, [action('h01-p01', 'checked', DAY + 120 * S, { onOxygen: false, consciousness: 'A' })], { state });
    expect(news2Scores(after.state)['h01-p01']).toMatchObject({ aggregate: 0, partial: false, missing: [] });
  });

  it('aggregate ≥7 is a critical alert (emergency) that lists the parameters and says partial', () => {
    const inputs = vitals(VS, (o) => (o < 30 * S ? NORMAL_VITALS : { heart_rate_bpm: 115, resp_rate_bpm: 27, spo2_pct: 90, body_temp_c: 36.6 }));
    const { signals } = run(rule, inputs);
    const a = active(signals);
    // All three medians cross together: one alert at the aggregate 3+3+2 = 8.
    expect(a.map((s) => s.severity)).toEqual(['critical']);
    const crit = a[0];
    expect(crit).toMatchObject({ key: 'news2:h01-p01', rule: 'news2', category: 'care', severity: 'critical', escalateNow: false, value: 8, residentId: 'h01-p01' });
    expect(crit?.message.en).toContain('NEWS2 8');
    expect(crit?.message.en).toContain('emergency');
    expect(crit?.message.en).toContain('RR 27 (3)');
    expect(crit?.message.en).toContain('partial score, missing: O2, SBP, ACVPU');
    expect(crit?.message.zh).toContain('部分评分');
  });

  it('a rising score upgrades the one alert; a falling score that still triggers keeps it as it is', () => {
    const rr27 = { ...NORMAL_VITALS, resp_rate_bpm: 27 };
    const worse = { heart_rate_bpm: 115, resp_rate_bpm: 27, spo2_pct: 90, body_temp_c: 36.6 };
    const inputs = vitals(VS, (o) => (o < 120 * S ? rr27 : o < 240 * S ? worse : rr27), 360);
    const { signals } = run(rule, inputs);
    expect(signals.map((s) => [s.key, s.active, s.severity])).toEqual([
      ['news2:h01-p01', true, 'medium'],
      ['news2:h01-p01', true, 'critical'],
    ]);
  });

  it('does not score a monitor value until its readings span 30 s: a dip right after start-up or a gap is no score', () => {
    // The first readings after a (re)connect are an artefact dip: a median of one or two samples
    // would be the dip itself and score SpO2 3.
    const inputs = vitals(VS, (o) => (o < 10 * S ? { ...NORMAL_VITALS, spo2_pct: 84 } : NORMAL_VITALS), 90);
    const { state, signals } = run(rule, inputs);
    expect(signals).toEqual([]);
    expect(news2Scores(state)['h01-p01']).toMatchObject({ aggregate: 0 });
    // Within the first 30 s SpO2 is missing from the score, not scored from the dip.
    const early = run(rule, vitals(VS, () => ({ ...NORMAL_VITALS, spo2_pct: 84 }), 20));
    expect(early.signals).toEqual([]);
    expect(news2Scores(early.state)['h01-p01']?.missing).toContain('spo2');
  });

  it('aggregate 5–6 is a high-severity (urgent) alert', () => {
    const { signals } = run(rule, vitals(VS, () => ({ heart_rate_bpm: 95, resp_rate_bpm: 22, spo2_pct: 93, body_temp_c: 36.6 })));
    expect(active(signals).map((s) => [s.severity, s.value])).toEqual([['high', 5]]);
  });

  it('a 3 in a single parameter is a medium alert (urgent ward-based review), from a staff observation too', () => {
    const base = run(rule, vitals(VS, () => NORMAL_VITALS));
    expect(base.signals).toEqual([]);
    const { signals } = run(rule, [action('h01-p01', 'checked', DAY + 121 * S, { consciousness: 'C' })], { state: base.state });
    expect(active(signals).map((s) => [s.severity, s.value])).toEqual([['medium', 3]]);
    expect(signals[0]?.message.en).toContain('urgent ward-based review');
  });

  it('a 5-second movement artefact does not change the score', () => {
    const { state, signals } = run(rule, vitals(VS, (o) => (o >= 60 * S && o < 70 * S ? { ...NORMAL_VITALS, spo2_pct: 80, heart_rate_bpm: 140 } : NORMAL_VITALS)));
    expect(signals).toEqual([]);
    expect(news2Scores(state)['h01-p01']?.aggregate).toBe(0);
  });

  it('uses Scale 2 for a hypercapnic resident: 89 % scores 0 there, 3 on Scale 1', () => {
    const at89 = (d: string) => vitals(d, () => ({ ...NORMAL_VITALS, spo2_pct: 89 }));
    const hyper = run(rule, at89('h01-vs-p05'));
    expect(news2Scores(hyper.state)['h01-p05']).toMatchObject({ spo2Scale: 2, aggregate: 0 });
    expect(hyper.signals).toEqual([]);
    const normal = run(rule, at89(VS));
    expect(news2Scores(normal.state)['h01-p01']).toMatchObject({ spo2Scale: 1, aggregate: 3 });
    expect(active(normal.signals)).toHaveLength(1);
  });

  it('merges the bed sensor and the monitor; the empty bed sensor does not count', () => {
    const monitor = vitals(VS, () => ({ spo2_pct: 97, body_temp_c: 36.6 }));
    const bed = vitals('h01-bed-p01', () => ({ bed_occupied: true, heart_rate_bpm: 70, resp_rate_bpm: 15 }));
    const { state } = run(rule, merge(monitor, bed));
    expect(Object.keys(news2Scores(state)['h01-p01']?.components ?? {}).sort()).toEqual(['pulse', 'resp_rate', 'spo2', 'temperature']);
    const empty = run(rule, vitals('h01-bed-p02', () => ({ bed_occupied: false, heart_rate_bpm: 0, resp_rate_bpm: 0 })));
    expect(news2Scores(empty.state)['h01-p02']?.missing).toContain('pulse');
  });

  it('values older than the staleness window are missing, and their loss does not clear the alert', () => {
    const bad = run(rule, vitals(VS, () => ({ heart_rate_bpm: 95, resp_rate_bpm: 22, spo2_pct: 93, body_temp_c: 36.6 })));
    expect(active(bad.signals)).toHaveLength(1);
    const later = run(rule, [tick(DAY + 10 * MIN)], { state: bad.state });
    expect(news2Scores(later.state)['h01-p01']).toMatchObject({ aggregate: 0, missing: expect.arrayContaining(['pulse', 'spo2', 'resp_rate', 'temperature']) });
    expect(later.signals).toEqual([]);
  });

  it('clears when the resident recovers, and survives a JSON round trip', () => {
    const bad = vitals(VS, () => ({ heart_rate_bpm: 95, resp_rate_bpm: 22, spo2_pct: 93, body_temp_c: 36.6 }));
    const good = stream(VS, DAY + 120 * S, DAY + 240 * S, () => NORMAL_VITALS);
    const { signals } = run(rule, [...bad, ...good], { persist: true });
    expect(active(signals)).toHaveLength(1);
    expect(cleared(signals)).toHaveLength(1);
    expect(cleared(signals)[0]?.message.en).toContain('below the trigger levels');
  });
});
