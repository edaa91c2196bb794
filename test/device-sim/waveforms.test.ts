import { describe, expect, it } from 'vitest';
import { METRICS, type MetricName, type MetricSpec } from '../../contract/metrics.ts';
import { mulberry32, smoothNoise } from '../../device-sim/prng.ts';
import { sample } from '../../device-sim/model.ts';
import { roomTemperature } from '../../device-sim/waveforms.ts';
import { demoRegistry } from '../support/registry.ts';
import { T0, decodeAll, model, run } from './helpers.ts';

const registry = demoRegistry();
const HOUR = 3_600_000;

describe('prng', () => {
  it('mulberry32 is deterministic per seed and differs between seeds', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const sa = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(sa);
    expect(Array.from({ length: 5 }, () => c())).not.toEqual(sa);
    for (const x of sa) expect(x >= 0 && x < 1).toBe(true);
  });

  it('smooth noise moves little between nearby instants', () => {
    const a = smoothNoise(9, T0, 60_000);
    const b = smoothNoise(9, T0 + 1000, 60_000);
    expect(Math.abs(a - b)).toBeLessThan(0.3);
  });
});

describe('baseline waveforms', () => {
  it('are pure functions of seed and time', () => {
    const m1 = model(registry, 'h01-vs-p01', 5);
    const m2 = model(registry, 'h01-vs-p01', 5);
    const m3 = model(registry, 'h01-vs-p01', 6);
    expect(sample(m1, T0 + 12_345)).toEqual(sample(m2, T0 + 12_345));
    const series = (m: typeof m1): unknown[] => Array.from({ length: 20 }, (_, i) => sample(m, T0 + i * 60_000).metrics);
    expect(series(m3)).not.toEqual(series(m1));
  });

  it('room temperature follows the day: warmer mid-afternoon than before dawn (local UTC+8)', () => {
    const p = { seed: 1, meanC: 22, diurnalAmpC: 1.2 };
    const afternoon = Date.UTC(2026, 0, 1, 7); // 15:00 local
    const dawn = Date.UTC(2026, 0, 1, 19); // 03:00 local
    expect(roomTemperature(p, afternoon) - roomTemperature(p, dawn)).toBeGreaterThan(1.5);
  });

  it('every device of the demo site stays inside the metric catalogue ranges and every message decodes, over two days', () => {
    const problems: string[] = [];
    for (const d of registry.site.devices) {
      const m = model(registry, d.id);
      const steps = run(m, () => [], T0, T0 + 48 * HOUR, 23 * 60_000 + 17_000);
      for (const st of steps) {
        for (const [k, v] of Object.entries(st.s.metrics)) {
          const spec: MetricSpec = METRICS[k as MetricName];
          if (typeof v === 'number' && ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max))) problems.push(`${d.id} ${k}=${v}`);
        }
        if (st.events.length > 0) problems.push(`${d.id} spontaneous events ${st.events.map((e) => e.type).join()}`);
      }
      problems.push(...decodeAll(registry, m, steps));
    }
    expect(problems).toEqual([]);
  });

  it('keeps healthy residents and quiet rooms in plausible, non-alarming ranges', () => {
    const seen = { hr: [] as number[], rr: [] as number[], spo2: [] as number[], temp: [] as number[], sbp: [] as number[], air: [] as number[], smoke: [] as number[], battery: [] as number[], rssi: [] as number[] };
    for (const r of registry.site.residents.filter((x) => !x.hypercapnic)) {
      const m = model(registry, r.id.replace(/^([a-z]+\d+)-(p\d+)$/, '$1-vs-$2'));
      for (const st of run(m, () => [], T0, T0 + 24 * HOUR, 7 * 60_000 + 3000)) {
        const x = st.s.metrics;
        seen.hr.push(x.heart_rate_bpm as number);
        seen.rr.push(x.resp_rate_bpm as number);
        seen.spo2.push(x.spo2_pct as number);
        seen.temp.push(x.body_temp_c as number);
        if (typeof x.systolic_bp_mmhg === 'number') seen.sbp.push(x.systolic_bp_mmhg);
        seen.battery.push(x.battery_pct as number);
        seen.rssi.push(x.rssi_dbm as number);
      }
    }
    for (const d of registry.site.devices.filter((x) => x.kind === 'smoke_detector')) {
      for (const st of run(model(registry, d.id), () => [], T0, T0 + 24 * HOUR, 41 * 60_000)) {
        seen.air.push(st.s.metrics.temperature_c as number);
        seen.smoke.push(st.s.metrics.smoke_obscuration_pct_per_m as number);
      }
    }
    const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
    const [hrLo, hrHi] = range(seen.hr);
    expect(hrLo).toBeGreaterThanOrEqual(50);
    expect(hrHi).toBeLessThanOrEqual(95);
    expect(hrHi - hrLo).toBeGreaterThan(10); // natural variability, not a flat line
    expect(range(seen.rr)[0]).toBeGreaterThanOrEqual(11);
    expect(range(seen.rr)[1]).toBeLessThanOrEqual(21);
    expect(range(seen.spo2)[0]).toBeGreaterThanOrEqual(94);
    expect(range(seen.temp)[0]).toBeGreaterThanOrEqual(35.9);
    expect(range(seen.temp)[1]).toBeLessThanOrEqual(37.5);
    expect(seen.sbp.length).toBeGreaterThan(0); // blood pressure only occasionally
    expect(seen.sbp.length).toBeLessThan(seen.hr.length / 2);
    expect(range(seen.sbp)[0]).toBeGreaterThanOrEqual(100);
    expect(range(seen.air)[0]).toBeGreaterThanOrEqual(16);
    expect(range(seen.air)[1]).toBeLessThanOrEqual(30);
    expect(range(seen.smoke)[0]).toBeGreaterThanOrEqual(0);
    expect(range(seen.smoke)[1]).toBeLessThanOrEqual(0.3);
    expect(range(seen.battery)[0]).toBeGreaterThan(50);
    expect(range(seen.rssi)[0]).toBeGreaterThanOrEqual(-100);
  });

  it('hypercapnic residents live at the NEWS2 Scale 2 target of 88–92 %', () => {
    const r = registry.site.residents.find((x) => x.hypercapnic);
    expect(r, 'the demo site has a hypercapnic resident').toBeDefined();
    const m = model(registry, registry.devicesOfResident(r?.id ?? '').find((d) => d.kind === 'vital_signs_monitor')?.id ?? '');
    const spo2 = run(m, () => [], T0, T0 + 6 * HOUR, 5 * 60_000).map((s) => s.s.metrics.spo2_pct as number);
    expect(Math.min(...spo2)).toBeGreaterThanOrEqual(87);
    expect(Math.max(...spo2)).toBeLessThanOrEqual(93);
  });

  it('drains the battery slowly', () => {
    const m = model(registry, 'h01-sd-r101');
    const a = sample(m, T0).metrics.battery_pct as number;
    const b = sample(m, T0 + 30 * 24 * HOUR).metrics.battery_pct as number;
    expect(b).toBeLessThan(a);
    expect(a - b).toBeLessThan(15);
  });

  it('shows repositioning turns as movement bursts at the resident interval', () => {
    const r = registry.resident('h01-p01');
    const m = model(registry, 'h01-bed-p01');
    const steps = run(m, () => [], T0, T0 + 8 * HOUR, 5000);
    // Count turns: bursts of movement ≥ 40 separated by quiet.
    let turns = 0;
    let inBurst = false;
    for (const st of steps) {
      const busy = (st.s.metrics.movement_index as number) >= 40;
      if (busy && !inBurst) turns++;
      inBurst = busy;
    }
    const expected = (8 * 60) / (r?.turnIntervalMin ?? 120);
    expect(turns).toBeGreaterThanOrEqual(Math.floor(expected));
    expect(turns).toBeLessThanOrEqual(Math.ceil(expected) + 1);
  });

  it('staggers devices so they do not publish in lockstep', () => {
    const offsets = new Set(registry.site.devices.filter((d) => d.kind === 'smoke_detector').map((d) => model(registry, d.id).offsetMs));
    expect(offsets.size).toBeGreaterThan(100);
  });
});
