import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkRequest,
  coveredDevices,
  filterSignals,
  homeOfRequest,
  isInForce,
  mayManage,
  releaseHeld,
  suppressionOf,
  type HeldSignal,
} from '../../../alerts/disablements/core.ts';
import type { Signal } from '../../../alerts/rules/types.ts';
import { MAX_DISABLEMENT_MS, type Disablement } from '../../../contract/incidents.ts';
import { demoRegistry } from '../../support/registry.ts';
import { careSignal, fireSignal } from '../support/signals.ts';

const registry = demoRegistry();
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3600_000;

function dis(over: Partial<Disablement> = {}): Disablement {
  return { id: 'd1', homeId: 'h01', scope: 'device', targetId: 'h01-sd-r101', mode: 'test', reason: 'annual test', by: 'director-h01', startedAt: T0, until: T0 + HOUR, suppressedSignals: 0, version: 1, ...over };
}
function trouble(rule: string, over: Partial<Signal> = {}): Signal {
  return fireSignal({ key: `${rule}:h01-sd-r101`, rule, category: 'device', signal: 'trouble', severity: 'medium', latching: false, ...over });
}
const at = (ms: number): number => T0 + ms;

describe('matching: scopes (Alertmanager-style matchers over home / room / device)', () => {
  it('device scope covers that device only', () => {
    const d = dis();
    expect(suppressionOf(fireSignal(), [d], registry, at(1))?.id).toBe('d1');
    expect(suppressionOf(fireSignal({ key: 'smoke:h01-sd-r102', deviceId: 'h01-sd-r102', roomId: 'r102' }), [d], registry, at(1))).toBeUndefined();
  });

  it('room scope covers every fire device in that room, only in that home', () => {
    const d = dis({ scope: 'room', targetId: 'plant' });
    for (const id of ['h01-sd-plant', 'h01-ef-plant', 'h01-wp-plant']) expect(suppressionOf(fireSignal({ key: `x:${id}`, deviceId: id, roomId: 'plant' }), [d], registry, at(1))?.id).toBe('d1');
    expect(suppressionOf(fireSignal({ key: 'x', deviceId: 'h01-sd-office', roomId: 'office' }), [d], registry, at(1))).toBeUndefined();
    // Room ids repeat across homes: h02's plant room is another room.
    expect(suppressionOf(fireSignal({ key: 'x', homeId: 'h02', deviceId: 'h02-sd-plant', roomId: 'plant' }), [d], registry, at(1))).toBeUndefined();
  });

  it('the room is the registry room of the device, not what the signal says', () => {
    const d = dis({ scope: 'room', targetId: 'r101' });
    expect(suppressionOf(fireSignal({ roomId: 'r999' }), [d], registry, at(1))?.id).toBe('d1');
  });

  it('home scope covers every fire device of the home and none of another home', () => {
    const d = dis({ scope: 'home', targetId: 'h01' });
    for (const dev of registry.devicesOfHome('h01').filter((x) => !['vital_signs_monitor', 'bed_sensor', 'wetness_sensor'].includes(x.kind))) {
      expect(suppressionOf(fireSignal({ key: `x:${dev.id}`, deviceId: dev.id, roomId: dev.roomId }), [d], registry, at(1))?.id).toBe('d1');
    }
    expect(suppressionOf(fireSignal({ homeId: 'h02', deviceId: 'h02-sd-r101' }), [d], registry, at(1))).toBeUndefined();
  });

  it('a signal whose device is of another home than it says, or unknown, goes through (fail open)', () => {
    const d = dis({ scope: 'home', targetId: 'h01' });
    expect(suppressionOf(fireSignal({ deviceId: 'h02-sd-r101' }), [d], registry, at(1))).toBeUndefined();
    expect(suppressionOf(fireSignal({ deviceId: 'h01-nope' }), [d], registry, at(1))).toBeUndefined();
  });

  it('the most specific disablement is named: device before room before home', () => {
    const home = dis({ id: 'home', scope: 'home', targetId: 'h01', startedAt: T0 - 10 });
    const room = dis({ id: 'room', scope: 'room', targetId: 'r101', startedAt: T0 - 5 });
    const device = dis({ id: 'device' });
    expect(suppressionOf(fireSignal(), [home, room, device], registry, at(1))?.id).toBe('device');
    expect(suppressionOf(fireSignal(), [home, room], registry, at(1))?.id).toBe('room');
  });
});

describe('start and end', () => {
  it('in force from startedAt until (exclusive), and not once ended', () => {
    const d = dis();
    expect(isInForce(d, T0 - 1)).toBe(false);
    expect(isInForce(d, T0)).toBe(true);
    expect(isInForce(d, T0 + HOUR - 1)).toBe(true);
    expect(isInForce(d, T0 + HOUR)).toBe(false);
    expect(isInForce({ ...d, endedAt: T0 + 5 }, T0 + 10)).toBe(false);
    expect(suppressionOf(fireSignal(), [d], registry, T0 + HOUR)).toBeUndefined();
  });
});

describe('what each mode suppresses', () => {
  const supervisory = fireSignal({ key: 'water_pressure_low:h01-sd-r101', rule: 'water_pressure_low', signal: 'supervisory', severity: 'medium', latching: false });
  const prealarm = fireSignal({ key: 'smoke_prealarm:h01-sd-r101', rule: 'smoke_prealarm', severity: 'medium', latching: false });
  const confirmed = fireSignal({ key: 'fire_confirmed:h01:r101', rule: 'fire_confirmed', escalateNow: true });

  for (const mode of ['test', 'disabled'] as const) {
    it(`${mode}: fire alarms, pre-alarms, confirmed fire and supervisory signals are suppressed`, () => {
      for (const s of [fireSignal(), prealarm, confirmed, supervisory]) expect(suppressionOf(s, [dis({ mode })], registry, at(1))?.id).toBe('d1');
    });
    it(`${mode}: the trouble a test causes (tamper, device fault, offline) is suppressed`, () => {
      for (const rule of ['tamper', 'device_fault', 'device_offline']) expect(suppressionOf(trouble(rule), [dis({ mode })], registry, at(1))?.id).toBe('d1');
    });
  }

  it('test: trouble that is a finding (failed self-test, low battery, dirty, stuck) goes through; disabled: suppressed', () => {
    for (const rule of ['self_test_failed', 'low_battery', 'dirty_detector', 'stuck_sensor']) {
      expect(suppressionOf(trouble(rule), [dis({ mode: 'test' })], registry, at(1))).toBeUndefined();
      expect(suppressionOf(trouble(rule), [dis({ mode: 'disabled' })], registry, at(1))?.id).toBe('d1');
    }
  });

  it("a resident's care signals are never suppressed: SOS, fall, vital signs, by any scope or mode", () => {
    const all = [dis({ id: 'a', mode: 'disabled', scope: 'home', targetId: 'h01' }), dis({ id: 'b', mode: 'test', scope: 'room', targetId: 'r101' })];
    const sos = careSignal({ key: 'sos:h01-bed-p01', rule: 'sos', severity: 'critical', deviceId: 'h01-bed-p01' });
    const fall = careSignal({ key: 'fall:h01-bed-p01', rule: 'fall', severity: 'critical', deviceId: 'h01-bed-p01' });
    const vitals = careSignal();
    for (const s of [sos, fall, vitals]) expect(suppressionOf(s, all, registry, at(1))).toBeUndefined();
    // Not even a (mis-categorised) fire-class signal from a care device, nor a care device's own trouble.
    expect(suppressionOf(fireSignal({ deviceId: 'h01-vs-p01' }), all, registry, at(1))).toBeUndefined();
    expect(suppressionOf(trouble('device_offline', { deviceId: 'h01-vs-p01' }), all, registry, at(1))).toBeUndefined();
  });

  it('home-level signals without a device (home communication loss, which cuts off care devices too) go through', () => {
    const s = trouble('home_comm_loss', { key: 'home_comm_loss:h01', deviceId: undefined, roomId: undefined, severity: 'critical' });
    expect(suppressionOf(s, [dis({ mode: 'disabled', scope: 'home', targetId: 'h01' })], registry, at(1))).toBeUndefined();
  });

  it('clears always pass, so an alarm open before the disablement can clear', () => {
    expect(suppressionOf(fireSignal({ active: false }), [dis({ mode: 'disabled' })], registry, at(1))).toBeUndefined();
  });

  it('property: a care-category signal or a clear is never suppressed, whatever the disablements', () => {
    const devices = registry.devicesOfHome('h01').map((d) => d.id);
    const disArb = fc.record({
      id: fc.constantFrom('a', 'b', 'c'),
      scope: fc.constantFrom('device', 'room', 'home'),
      targetId: fc.constantFrom('h01', 'r101', 'r102', 'plant', ...devices),
      mode: fc.constantFrom('test', 'disabled'),
    });
    fc.assert(
      fc.property(fc.array(disArb, { maxLength: 5 }), fc.constantFrom(...devices), fc.boolean(), (ds, deviceId, care) => {
        const list = ds.map((d) => dis(d as Partial<Disablement>));
        const s = care ? careSignal({ deviceId, active: true }) : fireSignal({ deviceId, active: false });
        return suppressionOf(s, list, registry, at(1)) === undefined;
      }),
    );
  });
});

describe('filterSignals: hold, forget, onset', () => {
  const none = new Map<string, HeldSignal>();

  it('holds a suppressed signal, passes the rest in order; a repeat is no new onset', () => {
    const d = dis();
    const care = careSignal();
    const r = filterSignals([fireSignal(), care, fireSignal({ value: 20 })], [d], none, registry, at(1));
    expect(r.pass).toEqual([care]);
    expect(r.suppressed.map((s) => s.onset)).toEqual([true, false]);
    expect(r.hold.get('smoke:h01-sd-r101')?.signal.value).toBe(20);
    expect(r.forget.size).toBe(0);
  });

  it('a clear of a held condition passes and forgets it', () => {
    const held = new Map<string, HeldSignal>([['smoke:h01-sd-r101', { disablementId: 'd1', signal: fireSignal() }]]);
    const clear = fireSignal({ active: false });
    const r = filterSignals([clear], [dis()], held, registry, at(1));
    expect(r.pass).toEqual([clear]);
    expect([...r.forget]).toEqual(['smoke:h01-sd-r101']);
    expect(filterSignals([fireSignal()], [dis()], held, registry, at(1)).suppressed[0]?.onset).toBe(false);
  });

  it('a clear then a new alarm in one batch: not held after the clear, a new onset after it', () => {
    const held = new Map<string, HeldSignal>([['smoke:h01-sd-r101', { disablementId: 'd1', signal: fireSignal() }]]);
    const r = filterSignals([fireSignal({ active: false }), fireSignal()], [dis()], held, registry, at(1));
    expect(r.suppressed[0]?.onset).toBe(true);
    expect(r.hold.has('smoke:h01-sd-r101')).toBe(true);
    expect(r.forget.has('smoke:h01-sd-r101')).toBe(false);
  });
});

describe('releaseHeld: what is raised when a disablement ends', () => {
  it('releases conditions held by an ended disablement, and hands over to another still in force', () => {
    const ended = dis({ id: 'd1', endedAt: at(10) });
    const roomWide = dis({ id: 'd2', scope: 'room', targetId: 'r102' });
    const held = new Map<string, HeldSignal>([
      ['smoke:h01-sd-r101', { disablementId: 'd1', signal: fireSignal() }],
      ['smoke:h01-sd-r102', { disablementId: 'd1', signal: fireSignal({ key: 'smoke:h01-sd-r102', deviceId: 'h01-sd-r102', roomId: 'r102' }) }],
    ]);
    const r = releaseHeld(held, [ended, roomWide], registry, at(20));
    expect(r.release.map((h) => h.signal.key)).toEqual(['smoke:h01-sd-r101']);
    expect(r.reassign.get('smoke:h01-sd-r102')?.disablementId).toBe('d2');
  });

  it('nothing is released while its disablement is still in force, everything once past until', () => {
    const held = new Map<string, HeldSignal>([['smoke:h01-sd-r101', { disablementId: 'd1', signal: fireSignal() }]]);
    expect(releaseHeld(held, [dis()], registry, at(HOUR - 1)).release).toEqual([]);
    expect(releaseHeld(held, [dis()], registry, at(HOUR)).release).toHaveLength(1);
  });
});

describe('requests and who may', () => {
  const req = { scope: 'device' as const, targetId: 'h01-sd-r101', mode: 'test' as const, reason: 'annual test', durationMin: 60 };
  const director = { username: 'director-h01', role: 'director' as const, homeId: 'h01' };

  it('directors of the home and admins may; staff and bureau may not; another home is not found', () => {
    expect(mayManage(director, 'h01').ok).toBe(true);
    expect(mayManage({ username: 'admin', role: 'admin' }, 'h05').ok).toBe(true);
    expect(mayManage({ username: 'staff-h01', role: 'staff', homeId: 'h01' }, 'h01')).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    expect(mayManage({ username: 'bureau', role: 'bureau' }, 'h01')).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    expect(mayManage(director, 'h02')).toMatchObject({ ok: false, code: 'HOME_NOT_FOUND' });
  });

  it('the target must exist in that home, be a fire-system point, and the time be bounded', () => {
    expect(checkRequest(req, 'h01', registry).ok).toBe(true);
    expect(checkRequest(req, 'h02', registry)).toMatchObject({ code: 'DISABLEMENT_TARGET_NOT_FOUND' });
    expect(checkRequest({ ...req, targetId: 'h01-vs-p01' }, 'h01', registry)).toMatchObject({ code: 'DISABLEMENT_CARE_DEVICE' });
    expect(checkRequest({ ...req, scope: 'room', targetId: 'r999' }, 'h01', registry)).toMatchObject({ code: 'DISABLEMENT_TARGET_NOT_FOUND' });
    expect(checkRequest({ ...req, scope: 'home', targetId: 'h02' }, 'h01', registry)).toMatchObject({ code: 'DISABLEMENT_TARGET_NOT_FOUND' });
    expect(checkRequest({ ...req, durationMin: MAX_DISABLEMENT_MS / 60_000 + 1 }, 'h01', registry)).toMatchObject({ code: 'DISABLEMENT_TOO_LONG' });
    expect(checkRequest({ ...req, durationMin: MAX_DISABLEMENT_MS / 60_000 }, 'h01', registry).ok).toBe(true);
    expect(checkRequest(req, 'h99', registry)).toMatchObject({ code: 'HOME_NOT_FOUND' });
  });

  it('a room covers its fire devices only (not the care devices in it)', () => {
    expect(coveredDevices({ homeId: 'h01', scope: 'room', targetId: 'r101' }, registry).map((d) => d.id)).toEqual(['h01-sd-r101']);
  });

  it('the socket request finds its home from the target', () => {
    expect(homeOfRequest({ scope: 'device', targetId: 'h03-sd-r101' }, { username: 'admin', role: 'admin' }, registry)).toEqual({ ok: true, value: 'h03' });
    expect(homeOfRequest({ scope: 'room', targetId: 'r101' }, director, registry)).toEqual({ ok: true, value: 'h01' });
    expect(homeOfRequest({ scope: 'room', targetId: 'r101' }, { username: 'admin', role: 'admin' }, registry)).toMatchObject({ ok: false, code: 'API_BAD_REQUEST' });
  });
});
