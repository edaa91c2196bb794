import type { Signal } from '../../../alerts/rules/types.ts';

/** A fire alarm signal in h01 (latching, as the fire rules send them). */
export function fireSignal(over: Partial<Signal> = {}): Signal {
  return {
    key: 'smoke:h01-sd-r101',
    rule: 'smoke_alarm',
    category: 'fire',
    signal: 'alarm',
    severity: 'critical',
    homeId: 'h01',
    deviceId: 'h01-sd-r101',
    roomId: 'r101',
    active: true,
    latching: true,
    sourceTs: Date.UTC(2026, 0, 1) - 100,
    receivedTs: Date.UTC(2026, 0, 1) - 50,
    value: 14,
    message: { zh: '101 房间烟雾报警', en: 'Smoke alarm, room 101' },
    ...over,
  };
}

export function careSignal(over: Partial<Signal> = {}): Signal {
  return {
    key: 'spo2:h01-p01',
    rule: 'spo2_low',
    category: 'care',
    signal: 'care',
    severity: 'high',
    homeId: 'h01',
    deviceId: 'h01-vs-p01',
    roomId: 'r101',
    residentId: 'h01-p01',
    active: true,
    sourceTs: Date.UTC(2026, 0, 1) - 100,
    message: { zh: '血氧偏低', en: 'Low SpO2' },
    ...over,
  };
}
