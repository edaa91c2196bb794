import type { Device } from '../../../contract/registry.ts';
import type { DeviceKind } from '../../../contract/device-kinds.ts';
import type { RuleContext } from '../types.ts';

/**
 * Every number a fire, supervisory or trouble rule compares against, by name. A value is looked up
 * device first (`Device.thresholds`), then room (`Room.thresholds`, e.g. the kitchen's
 * `heat_fixed_c: 65`), then the device kind's default, then the site default below. docs/rules.md
 * explains each one for a fire-safety officer.
 */
export const FIRE_DEFAULTS = {
  // EN 54-5 class A1 static response temperature is 54–65 °C (max application temperature 50 °C).
  // 58 °C sits inside that band with 8 °C of margin above the 50 °C a room may legitimately reach,
  // and alarms ~7 °C earlier than the band's top, which matters for residents who cannot self-evacuate.
  heat_fixed_c: 58,
  // Clear level for the fixed alarm: 3 °C below the set level (hysteresis, no flapping).
  heat_fixed_clear_delta_c: 3,
  // EN 54-5 rate-of-rise ("R") class: response to air warming at ~10 °C/min within the class A1
  // time limits; the issue asks for "of the order of 8 °C/min sustained". 8 °C/min over the
  // least-squares window below; clears under half of it.
  heat_ror_c_per_min: 8,
  heat_ror_window_s: 60,
  // UL 268 lists smoke detector sensitivity 0.5–4.0 %/ft (≈1.6–12.5 %/m); EN 54-7 likewise sets a
  // response-threshold band. 4 %/m (≈1.2 %/ft) is the sensitive end, chosen for residents who
  // need the earliest warning; alarm verification (below) keeps nuisance alarms down.
  smoke_alarm_pct_per_m: 4,
  smoke_alarm_clear_pct_per_m: 3,
  // Pre-alarm at half the alarm level (2 %/m ≈ 0.6 %/ft, just above UL 268's 0.5 %/ft floor).
  smoke_prealarm_pct_per_m: 2,
  smoke_prealarm_clear_pct_per_m: 1.5,
  // NFPA 72 §23.8.5.4.1 alarm verification: a single smoke detector's alarm must persist (or
  // recur) through a verification period; the feature may not delay the alarm by more than 60 s.
  // Either verifies here (smoke.ts): still at alarm level at the window's end, or back at it before.
  smoke_verify_s: 60,
  // Dirty detector: clean-air baseline (slow average) above half the pre-alarm margin. NFPA 72
  // ch. 14 requires detectors whose sensitivity drifted outside their listed range to be cleaned or
  // replaced; UL 268 drift compensation signals "maintenance" before that. 1.0 %/m set, 0.7 %/m clear.
  smoke_dirty_pct_per_m: 1,
  smoke_dirty_clear_pct_per_m: 0.7,
  // GB 50116-2013 §9.2.3: residual-current electrical fire detector alarm setting 300–500 mA.
  // 300 mA, the sensitive end: a care home's circuits leak far less in normal service.
  residual_current_ma: 300,
  residual_current_clear_ma: 270,
  // GB 50116-2013 §9.3: temperature-type electrical fire detector alarm at 70–80 % of the cable's
  // rated maximum temperature. 70 °C ≈ 78 % of 90 °C (XLPE insulation, GB/T 12706); PVC cable
  // (70 °C rating) should override per device with `cable_temp_c: 55` (≈ 78 %).
  cable_temp_c: 70,
  cable_temp_clear_delta_c: 5,
  // GB 15322.1-2019 / GB 50493-2019 §5.5: combustible gas first-level (low) alarm ≤ 25 %LEL,
  // second-level (high) alarm ≤ 50 %LEL. 20 %LEL leaves margin for sensor error below the 25 cap.
  gas_low_lel_pct: 20,
  gas_low_clear_lel_pct: 15,
  gas_high_lel_pct: 50,
  gas_high_clear_lel_pct: 40,
  // Fire-water main: the 0.15 MPa floor, the conservative end of GB 50974-2014 §5.2.2
  // (minimum static pressure at the most unfavourable point 0.07–0.15 MPa). Clears at 0.17 MPa.
  water_low_mpa: 0.15,
  water_low_clear_mpa: 0.17,
  // Over-pressure: GB 50974-2014 §6.2.1 zones a system when hydrant static pressure exceeds 1.0 MPa
  // or sprinkler working pressure exceeds (大于) 1.20 MPa; pipework is commonly rated 1.2–1.6 MPa.
  // Supervisory above 1.2 MPa (> 1.2), clears at or below 1.1 MPa (water-pressure.ts `strict`).
  water_high_mpa: 1.2,
  water_high_clear_mpa: 1.1,
  // NFPA 72 §23.16 (low-power radio): a low-battery trouble must come while at least 7 days of
  // operation remain. 20 % set, 25 % clear.
  battery_low_pct: 20,
  battery_clear_pct: 25,
  // No standard number: room air and cable temperatures jitter by at least the 0.1 °C resolution
  // within minutes; an identical value for 30 min means a frozen sensor (EN 54-2 §8: a fault that
  // prevents detection must be signalled as a fault).
  stuck_s: 1800,
} as const;

export type FireThreshold = keyof typeof FIRE_DEFAULTS;

/** Defaults that differ by device kind (none yet beyond the site defaults; kept as the seam). */
const KIND_DEFAULTS: Partial<Record<DeviceKind, Partial<Record<FireThreshold, number>>>> = {};

export function threshold(device: Device, name: FireThreshold, ctx: RuleContext): number {
  const own = device.thresholds?.[name];
  if (own !== undefined) return own;
  const room = ctx.registry.room(device.homeId, device.roomId)?.thresholds?.[name];
  if (room !== undefined) return room;
  return KIND_DEFAULTS[device.kind]?.[name] ?? FIRE_DEFAULTS[name];
}
