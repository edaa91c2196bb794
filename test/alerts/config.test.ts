import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../common/config.ts';
import { AlertsConfigSchema, escalationPolicy, parseNightHours } from '../../alerts/config.ts';
import { DEFAULT_POLICY } from '../../alerts/escalation.ts';

describe('alerts config', () => {
  it('parses night hours into minutes after local midnight', () => {
    expect(parseNightHours('21:00-06:00')).toEqual({ nightStartMin: 1260, nightEndMin: 360 });
    expect(parseNightHours('22:30-07:15')).toEqual({ nightStartMin: 1350, nightEndMin: 435 });
  });

  it('defaults to 21:00-06:00 in UTC+8 and refuses a malformed night window, naming the variable', () => {
    const config = loadConfig(AlertsConfigSchema, {});
    expect(config.careNightHours).toBe('21:00-06:00');
    expect(config.siteUtcOffsetMin).toBe(480);
    expect(() => loadConfig(AlertsConfigSchema, { CAREWATCH_CARE_NIGHT_HOURS: '25:00-06:00' })).toThrow(/CAREWATCH_CARE_NIGHT_HOURS="25:00-06:00" is invalid/);
    expect(() => loadConfig(AlertsConfigSchema, { CAREWATCH_SITE_UTC_OFFSET_MIN: 'eight' })).toThrow(ConfigError);
  });

  it('gives the escalation ladder per severity, by default the documented one, and refuses a malformed step', () => {
    expect(escalationPolicy(loadConfig(AlertsConfigSchema, {}))).toEqual(DEFAULT_POLICY);
    const custom = escalationPolicy(loadConfig(AlertsConfigSchema, { CAREWATCH_ESCALATION_CRITICAL: '30,120,15' }));
    expect(custom.bySeverity.critical).toEqual({ directorAfterS: 30, bureauAfterS: 120, remindEveryS: 15 });
    expect(custom.bySeverity.high).toEqual(DEFAULT_POLICY.bySeverity.high);
    expect(() => loadConfig(AlertsConfigSchema, { CAREWATCH_ESCALATION_HIGH: '300,0,60' })).toThrow(/CAREWATCH_ESCALATION_HIGH="300,0,60" is invalid: expected directorAfterS,bureauAfterS,remindEveryS/);
  });
});
