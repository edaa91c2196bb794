import { describe, expect, it } from 'vitest';
import { DEVICE_KINDS } from '../../../../contract/device-kinds.ts';
import { indexRegistry } from '../../../../contract/registry-index.ts';
import type { Device } from '../../../../contract/registry.ts';
import { supervisionRule, type SupervisionState } from '../../../../alerts/rules/fire/supervision.ts';
import type { RuleContext, RuleInput } from '../../../../alerts/rules/types.ts';
import { demoRegistry } from '../../../support/registry.ts';
import { byRule, clears, raises, run } from './harness.ts';
import { T0, heartbeats, merge, status, telemetry, ticks } from './shapes.ts';

/** The demo site cut to these homes (and to the devices `keep` keeps), so the others need no heartbeats in these tests. */
function cutSite(homeIds: readonly string[], keep: (d: Device) => boolean = () => true): RuleContext {
  const site = demoRegistry().site;
  const homes = new Set(homeIds);
  return { registry: indexRegistry({ ...site, homes: site.homes.filter((h) => homes.has(h.id)), devices: site.devices.filter((d) => homes.has(d.homeId) && keep(d)), residents: site.residents.filter((r) => homes.has(r.homeId)), users: [] }) };
}
const twoHomes = (): RuleContext => cutSite(['h01', 'h02']);

const interval = (d: Device): number => DEVICE_KINDS[d.kind].telemetryIntervalS;
const upTo = (inputs: RuleInput[], until: number): RuleInput[] => inputs.filter((i) => i.now < until);
const from = (inputs: RuleInput[], since: number): RuleInput[] => inputs.filter((i) => i.now >= since);

describe('supervision: heartbeat budgets and home communication loss', () => {
  const ctx = twoHomes();
  const h01 = ctx.registry.devicesOfHome('h01');
  const h02 = ctx.registry.devicesOfHome('h02');

  it('healthy homes for 10 min → no signal', () => {
    const { signals } = run([supervisionRule], merge(heartbeats([...h01, ...h02], interval, T0, 600), ticks(T0, 600, 5)), { ctx });
    expect(signals).toEqual([]);
  });

  it('a whole home going silent → one home-level alert, no per-device alert; restored → one clear', () => {
    const lossAt = T0 + 300_000;
    const backAt = T0 + 900_000;
    const beats = heartbeats([...h01, ...h02], interval, T0, 1500);
    const inputs = merge(
      beats.filter((i) => i.type !== 'telemetry' || i.device.homeId !== 'h01' || i.now < lossAt || i.now >= backAt),
      ticks(T0, 1500, 5),
    );
    const { signals } = run([supervisionRule], inputs, { ctx });
    expect(raises(signals, byRule('device_offline'))).toEqual([]);
    const home = signals.filter(byRule('home_comm_loss'));
    expect(home.map((s) => s.active)).toEqual([true, false]);
    expect(home[0]).toMatchObject({ key: 'home_comm_loss:h01', category: 'device', signal: 'trouble', severity: 'critical', homeId: 'h01' });
    expect(home[0]!.deviceId).toBeUndefined();
    // Recognised before NFPA 72 §23.16.2's 200 s, and before the 90 s budget of the fire devices.
    expect(home[0]!.sourceTs - lossAt).toBeLessThanOrEqual(90_000);
    expect(home[1]!.sourceTs).toBeGreaterThan(backAt);
  });

  it('a burst of broker-published offline statuses for a whole home → one home-level alert', () => {
    const lossAt = T0 + 300_000;
    const beats = heartbeats([...h01, ...h02], interval, T0, 900);
    const offline = h01.map((d, i) => status(d, lossAt + i * 50, false));
    const inputs = merge(
      beats.filter((i) => i.type !== 'telemetry' || i.device.homeId !== 'h01' || i.now < lossAt),
      offline,
      ticks(T0, 900, 5),
    );
    const { signals } = run([supervisionRule], inputs, { ctx });
    expect(raises(signals, byRule('device_offline'))).toEqual([]);
    expect(raises(signals, byRule('home_comm_loss'))).toHaveLength(1);
    expect(raises(signals, byRule('home_comm_loss'))[0]!.sourceTs - lossAt).toBeLessThanOrEqual(10_000);
  });

  it('one device reporting offline → its own trouble after the 10 s grace; back → cleared after 30 s', () => {
    const dev = h01.find((d) => d.id === 'h01-mcp-f2-corridor')!;
    const offAt = T0 + 120_000;
    const backAt = T0 + 400_000;
    const beats = heartbeats([...h01, ...h02], interval, T0, 700).filter((i) => i.type !== 'telemetry' || i.device.id !== dev.id || i.now < offAt || i.now >= backAt);
    const { signals } = run([supervisionRule], merge(beats, [status(dev, offAt, false), status(dev, backAt, true)], ticks(T0, 700, 5)), { ctx });
    expect(signals.map((s) => [s.key, s.active])).toEqual([
      ['device_offline:h01-mcp-f2-corridor', true],
      ['device_offline:h01-mcp-f2-corridor', false],
    ]);
    expect(signals[0]).toMatchObject({ category: 'device', signal: 'trouble', severity: 'high' });
    const raisedAfter = signals[0]!.sourceTs; // last message seen
    expect(raisedAfter).toBe(offAt + 40);
    expect(clears(signals)[0]!.message.en).toContain('again');
  });

  it('one silent device → trouble once its heartbeat budget (90 s for a smoke detector) runs out', () => {
    const dev = h02.find((d) => d.kind === 'smoke_detector')!;
    const stopAt = T0 + 120_000;
    const beats = heartbeats([...h01, ...h02], interval, T0, 600).filter((i) => i.type !== 'telemetry' || i.device.id !== dev.id || i.now < stopAt);
    const inputs = merge(beats, ticks(T0, 600, 5));
    const { signals, states } = run([supervisionRule], inputs, { ctx });
    expect(signals.map((s) => [s.key, s.active])).toEqual([[`device_offline:${dev.id}`, true]]);
    const state = states[0] as SupervisionState;
    const lastSeen = state.d[dev.id]![0];
    // Raised at the first tick after the budget ran out (ticks every 5 s).
    const raisedTick = inputs.find((i) => i.type === 'tick' && i.now - lastSeen > 90_000)!;
    expect(run([supervisionRule], upTo(inputs, raisedTick.now + 1), { ctx }).signals).toHaveLength(1);
    expect(run([supervisionRule], upTo(inputs, raisedTick.now), { ctx }).signals).toHaveLength(0);
  });

  it('after an engine restart (state restored, a 10 min gap) nothing re-fires as silent', () => {
    const all = merge(heartbeats([...h01, ...h02], interval, T0, 1800), ticks(T0, 1800, 5));
    const before = run([supervisionRule], upTo(all, T0 + 300_000), { ctx });
    const saved = JSON.parse(JSON.stringify(before.states[0])) as SupervisionState;
    const after = run([supervisionRule], from(all, T0 + 900_000), { ctx, states: [saved] });
    expect(before.signals).toEqual([]);
    expect(after.signals).toEqual([]);
  });

  // Session 19 (the 100,000-device benchmark at 5,000): "Bench home 50: home communication failure
  // (20/102 devices silent)", raised again and again. The fresh budget given when the home alert
  // cleared set every device's last-seen to that instant, the dead devices' too; they were down 20 s
  // later, the silence dated to that instant, and every device not heard since was taken as a slow
  // reporter silent since before it: left out of the fraction, so 20 of 20 judged were down. And an
  // alerts restart cleared the dead devices' troubles ("communicating again") and raised them anew.
  // Each case with and without the engine's in-place state (its tick schedule).
  for (const inPlace of [false, true])
  describe(`a home with some dead devices and the rest reporting once a minute together${inPlace ? ' (in place)' : ''}`, () => {
    // The two homes' devices whose kinds allow a report a minute (a heartbeat budget of 90 s or more),
    // as in the benchmark's homes of smoke detectors; 8 of h01's never report.
    const ctx: RuleContext = { ...cutSite(['h01', 'h02'], (d) => DEVICE_KINDS[d.kind].heartbeatBudgetS >= 90), inPlace };
    const slow = [...ctx.registry.devicesOfHome('h01'), ...ctx.registry.devicesOfHome('h02')];
    const dead = new Set(slow.filter((d) => d.homeId === 'h01' && d.kind === 'smoke_detector').slice(0, 8).map((d) => d.id));
    // Every live device once a minute, the home's all within a second (a gateway polling them in turn).
    const minutely = (untilS: number, skip: (t: number) => boolean = () => false): RuleInput[] => {
      const out: RuleInput[] = [];
      for (let t = 0; t <= untilS * 1000; t += 60_000) {
        if (skip(t)) continue;
        slow.forEach((d, i) => {
          if (!dead.has(d.id)) out.push(telemetry(d, T0 + 5_000 + t + i * 10, {}));
        });
      }
      return out;
    };

    it('an engine restart (no input for 90 s) raises no home communication loss', () => {
      const gap = (t: number): boolean => t >= 600_000 && t < 690_000;
      const inputs = merge(minutely(1800, gap), ticks(T0, 1800, 1).filter((i) => !gap(i.now - T0)));
      const { signals } = run([supervisionRule], inputs, { ctx });
      expect(raises(signals, byRule('home_comm_loss'))).toEqual([]);
      // The dead devices are raised one by one, once each.
      expect(raises(signals, byRule('device_offline')).map((x) => x.deviceId).sort()).toEqual([...dead].sort());
    });

    it('a home lost before an alerts restart stays lost through it, and its restoral after is reported once (h02: no dead devices)', () => {
      const gap = (t: number): boolean => t >= 600_000 && t < 690_000;
      const lost = (t: number): boolean => t >= 300_000 && t < 1_200_000;
      const inputs = merge(
        minutely(2400).filter((i) => !gap(i.now - T0) && (!('device' in i) || i.device.homeId !== 'h02' || !lost(i.now - T0 - 5_000))),
        ticks(T0, 2400, 1).filter((i) => !gap(i.now - T0)),
      );
      const { signals } = run([supervisionRule], inputs, { ctx });
      const home = signals.filter((x) => x.key === 'home_comm_loss:h02');
      expect(home.map((x) => x.active)).toEqual([true, false]);
      expect(home[1]!.sourceTs).toBeGreaterThan(T0 + 1_200_000);
    });

    it('a real loss of the home is raised once and cleared once, and not raised again after it clears', () => {
      const lost = (t: number): boolean => t >= 600_000 && t < 1_200_000;
      const inputs = merge(
        minutely(2400).filter((i) => !('device' in i) || i.device.homeId !== 'h01' || !lost(i.now - T0 - 5_000)),
        ticks(T0, 2400, 1),
      );
      const { signals } = run([supervisionRule], inputs, { ctx });
      const home = signals.filter(byRule('home_comm_loss'));
      expect(home.map((x) => x.active)).toEqual([true, false]);
      // Recognised within NFPA 72 §23.16.2's 200 s of the loss (the live devices' last burst at 545 s).
      expect(home[0]!.sourceTs - (T0 + 545_000)).toBeLessThanOrEqual(200_000);
    });
  });

  // The two ways a fresh budget must not hide a real loss (the session 19 review of a first fix,
  // which counted devices given a fresh budget as up): an alerts restart with no input for 90 s.
  for (const inPlace of [false, true])
  describe(`a home lost across an alerts restart${inPlace ? ' (in place)' : ''}`, () => {
    const ctx: RuleContext = { ...twoHomes(), inPlace };
    const gap = (t: number): boolean => t >= 600_000 && t < 690_000;
    const inputs = (silentFrom: number): RuleInput[] =>
      merge(
        heartbeats([...h01, ...h02], interval, T0, 1500).filter((i) => !gap(i.now - T0) && (!('device' in i) || i.device.homeId !== 'h01' || i.now - T0 < silentFrom)),
        ticks(T0, 1500, 1).filter((i) => !gap(i.now - T0)),
      );

    it('lost before the restart: the home alert stands through it, no device alert and no false restoral', () => {
      const { signals } = run([supervisionRule], inputs(300_000), { ctx });
      expect(signals.filter(byRule('home_comm_loss')).map((x) => x.active)).toEqual([true]);
      expect(raises(signals, byRule('device_offline'))).toEqual([]);
    });

    it('lost while alerts was down: recognised within 200 s of the last message', () => {
      const { signals } = run([supervisionRule], inputs(620_000), { ctx });
      const home = signals.filter(byRule('home_comm_loss'));
      expect(home.map((x) => x.active)).toEqual([true]);
      expect(home[0]!.sourceTs - (T0 + 620_000)).toBeLessThanOrEqual(200_000);
    });
  });

  // The session 19 review: a restart must not count devices that were back (their restore hold
  // counting) as down, or a home under the 80 % line before it is pushed over it.
  for (const inPlace of [false, true])
  it(`devices back from a long silence when alerts restarts stay up for the home count${inPlace ? ' (in place)' : ''}`, () => {
    const ctx: RuleContext = { ...cutSite(['h01'], (d) => DEVICE_KINDS[d.kind].telemetryIntervalS === 10), inPlace };
    const devs = ctx.registry.devicesOfHome('h01');
    // 79 % silent 100–400 s (under the line: raised one by one), back from 400 s; three more report
    // offline at 411 s; alerts down 425–725 s.
    const silent = new Set(devs.slice(0, Math.floor(0.79 * devs.length)).map((d) => d.id));
    const offline = devs.slice(silent.size, silent.size + 3);
    const down = (t: number): boolean => t >= 425_000 && t < 725_000;
    const inputs = merge(
      heartbeats(devs, interval, T0, 1200).filter((i) => {
        if (!('device' in i)) return true;
        const t = i.now - T0;
        if (down(t)) return false;
        if (silent.has(i.device.id) && t >= 100_000 && t < 400_000) return false;
        return !offline.some((d) => d.id === i.device.id) || t < 411_000;
      }),
      offline.map((d, k) => status(d, T0 + 411_000 + k * 100, false)),
      ticks(T0, 1200, 1).filter((i) => !down(i.now - T0)),
    );
    const { signals } = run([supervisionRule], inputs, { ctx });
    expect(raises(signals, byRule('home_comm_loss'))).toEqual([]);
    // The offline devices' troubles stand through the restart: raised once, never cleared.
    for (const d of offline) expect(signals.filter((x) => x.deviceId === d.id).map((x) => x.active)).toEqual([true]);
  });

  it("per-device state stays five numbers (the fifth: the device's own recent interval)", () => {
    const { states } = run([supervisionRule], merge(heartbeats(h01, interval, T0, 60), ticks(T0, 60, 5)), { ctx });
    const state = states[0] as SupervisionState;
    expect(Object.keys(state.d)).toHaveLength(h01.length + h02.length);
    for (const e of Object.values(state.d)) expect(e.length).toBeLessThanOrEqual(5);
    expect(state.d['h01-sd-r101']?.[4]).toBeGreaterThan(0);
  });
});
