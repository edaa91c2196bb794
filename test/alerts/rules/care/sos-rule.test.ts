import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../../common/clock.ts';
import type { Actor } from '../../../../alerts/access.ts';
import { createLifecycle, type AlertChange } from '../../../../alerts/lifecycle.ts';
import { createSosRule, SOS_KINDS } from '../../../../alerts/rules/care/sos-rule.ts';
import type { RuleInput, Signal } from '../../../../alerts/rules/types.ts';
import { demoRegistry } from '../../../support/registry.ts';
import { NIGHT, S, ctx, event, run } from './streams.ts';

const rule = createSosRule();
const staff: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };

function press(deviceId: string, ts: number, extra: { ok?: boolean } = {}): RuleInput {
  const e = event(deviceId, ts, 'sos_button');
  if (e.type !== 'event') throw new Error('not an event');
  return { ...e, event: { ...e.event, ...extra } };
}

function raised(signals: readonly Signal[]): Signal {
  const s = signals.find((x) => x.active);
  if (s === undefined) throw new Error(`no active signal in ${JSON.stringify(signals)}`);
  return s;
}

describe('sos_button: a call for help', () => {
  it('is a critical care alert at once, escalated at once and latching, naming resident, room, bed and device', () => {
    const { signals } = run(rule, [press('h01-nc-p01', NIGHT)]);
    const s = raised(signals);
    expect(s).toMatchObject({ key: 'sos:h01-p01', rule: 'sos', category: 'care', signal: 'care', severity: 'critical', escalateNow: true, latching: true, homeId: 'h01', roomId: 'r101', residentId: 'h01-p01', deviceId: 'h01-nc-p01', sourceTs: NIGHT });
    const r = demoRegistry().resident('h01-p01');
    expect(s.message.zh).toContain(r?.name);
    expect(s.message.zh).toContain('101室');
    expect(s.message.zh).toContain(`${r?.bed}床`);
    expect(s.message.zh).toContain('h01-nc-p01');
    expect(s.message.en).toMatch(/Room 101, bed A .*emergency call \(call button h01-nc-p01\)/);
    // The press is momentary: cleared at once, so the alert's latch (not the rule) keeps it open.
    expect(signals.map((x) => [x.key, x.active, x.latching])).toEqual([
      ['sos:h01-p01', true, true],
      ['sos:h01-p01', false, true],
    ]);
  });

  it("any of the resident's devices that can send it raises the same call (one key per resident)", () => {
    expect(SOS_KINDS).toEqual(expect.arrayContaining(['nurse_call', 'bed_sensor', 'vital_signs_monitor']));
    for (const dev of ['h01-bed-p01', 'h01-vs-p01']) {
      const s = raised(run(rule, [press(dev, NIGHT)]).signals);
      expect(s).toMatchObject({ key: 'sos:h01-p01', deviceId: dev, severity: 'critical' });
      expect(s.message.en).toContain(dev);
    }
  });

  it('a room-level call (bathroom pull cord) names the room, and the residents of the room if any', () => {
    const bath = raised(run(rule, [press('h01-nc-f1-bath', NIGHT)]).signals);
    expect(bath).toMatchObject({ key: 'sos:h01/f1-bath', roomId: 'f1-bath', deviceId: 'h01-nc-f1-bath', severity: 'critical', escalateNow: true, latching: true });
    expect(bath.residentId).toBeUndefined();
    expect(bath.message.en).toBe('Sunshine Care Home, Floor 1 bathroom: emergency call (call button h01-nc-f1-bath); go now');
    expect(bath.message.zh).toContain('1楼卫生间');
    // h02 room 103 has one resident (bed A); the free bed's button is room-level and names her.
    const free = raised(run(rule, [press('h02-nc-r103-b', NIGHT)]).signals);
    const people = demoRegistry().residentsOfHome('h02').filter((r) => r.roomId === 'r103');
    expect(people).toHaveLength(1);
    expect(free).toMatchObject({ key: 'sos:h02/r103', roomId: 'r103' });
    expect(free.message.en).toContain(`residents of this room: ${people[0]?.name} (bed A)`);
    expect(free.message.zh).toContain(`本室住户：${people[0]?.name}（A床）`);
  });

  it('raises nothing for a call cancelled at the device (ok: true) or for other events', () => {
    expect(run(rule, [press('h01-nc-p01', NIGHT, { ok: true })]).signals).toEqual([]);
    expect(run(rule, [event('h01-nc-p01', NIGHT, 'tamper'), event('h01-bed-p01', NIGHT, 'fall')]).signals).toEqual([]);
  });
});

describe('sos_button through the alert lifecycle', () => {
  it('latches until a person acknowledges and resolves with a comment; a second press folds into it and is recorded; no re-raise', () => {
    const clock = createManualClock(NIGHT);
    const changes: AlertChange[] = [];
    let n = 0;
    const lc = createLifecycle({ clock, registry: demoRegistry(), onChange: (c) => changes.push(c), newId: () => `a${++n}` });
    const c = ctx();
    const feed = (input: RuleInput): void => lc.applySignals(rule.evaluate(input, {}, c).signals);

    feed(press('h01-nc-p01', NIGHT));
    expect(lc.open()).toHaveLength(1);
    expect(lc.get('a1')).toMatchObject({ rule: 'sos', severity: 'critical', state: 'escalated', escalationLevel: 2, residentId: 'h01-p01' });
    // Pressed again while open: the same alert, the press on its record.
    clock.advance(40 * S);
    feed(press('h01-nc-p01', NIGHT + 40 * S));
    expect(lc.open().map((a) => a.id)).toEqual(['a1']);
    expect(lc.audit('a1')?.filter((e) => e.action === 'reactivated')).toHaveLength(1);

    expect(lc.resolve('a1', staff, 'went')).toMatchObject({ ok: false, code: 'ALERT_NOT_ACKNOWLEDGED' });
    expect(lc.ack('a1', staff).ok).toBe(true);
    expect(lc.resolve('a1', staff)).toMatchObject({ ok: false, code: 'ALERT_COMMENT_REQUIRED' });
    expect(lc.resolve('a1', staff, 'needed help to the toilet; settled back in bed')).toMatchObject({ ok: true, value: { state: 'resolved', resolvedBy: 'staff-h01' } });
    expect(lc.audit('a1')?.at(-1)?.reason).toBeUndefined();
    // The call was answered: it does not come back by itself.
    clock.advance(30 * 60 * S);
    expect(lc.open()).toEqual([]);
    // A new press after that is a new call.
    feed(press('h01-nc-p01', NIGHT + 31 * 60 * S));
    expect(lc.open().map((a) => a.id)).toEqual(['a2']);
    lc.close();
  });
});
