import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertMessage } from '../../contract/payloads.ts';
import { startPipeline, until, type Pipeline, type Watcher } from './support/pipeline.ts';

/**
 * Issue 3 "What must be shown": alarm verification and multi-criteria confirmation through the
 * running pipeline — device MQTT clients → broker → alerts (real rules) → socket.io clients.
 */
let p: Pipeline;
let staff1: Watcher;
let staff2: Watcher;
let bureau: Watcher;
const S = 1000;

beforeAll(async () => {
  p = await startPipeline('it_detect');
  staff1 = await p.watch('staff-h01');
  staff2 = await p.watch('staff-h02');
  bureau = await p.watch('bureau');
});
afterAll(async () => {
  await p.close();
});

const ofDevice = (w: Watcher, deviceId: string, rule?: string): AlertMessage[] => w.alerts.filter((a) => a.deviceId === deviceId && (rule === undefined || a.rule === rule));
const openFor = (deviceId: string): AlertMessage[] => p.alerts.lifecycle.open().filter((a) => a.deviceId === deviceId);

describe('NFPA 72 alarm verification (single detector)', () => {
  it('an alarm-level reading that falls back within 60 s stays an unverified pre-alarm: no fire alarm, no escalation', async () => {
    const sd = await p.device('h01-sd-r103');
    await sd.telemetry({ smoke_obscuration_pct_per_m: 5.5 });
    const pre = await until(() => ofDevice(staff1, 'h01-sd-r103', 'smoke_prealarm')[0], 'pre-alarm on the staff socket');
    expect(pre).toMatchObject({ category: 'fire', signal: 'alarm', severity: 'medium', state: 'raised', escalationLevel: 0 });
    p.clock.advance(30 * S);
    await sd.telemetry({ smoke_obscuration_pct_per_m: 1.0 }); // cooking smoke cleared inside the window
    p.clock.advance(60 * S);
    await sd.telemetry({ smoke_obscuration_pct_per_m: 0.8 }); // below the clear level for 60 s: pre-alarm over
    const cleared = await until(() => staff1.latest(pre.id)?.state === 'resolved' && staff1.latest(pre.id), 'pre-alarm resolved');
    expect(cleared.message.en).toContain('unverified');
    expect(cleared.resolvedBy).toBe('system');
    p.clock.advance(15 * 60 * S);
    // (Heartbeat trouble may come from the silent demo devices meanwhile; only fire alerts count here.)
    expect(ofDevice(staff1, 'h01-sd-r103').filter((a) => a.category === 'fire').map((a) => a.rule)).toEqual(['smoke_prealarm', 'smoke_prealarm']);
    expect(p.alerts.lifecycle.open().filter((a) => a.roomId === 'r103' && a.category === 'fire')).toEqual([]);
    expect(bureau.alerts.filter((a) => a.roomId === 'r103' && a.category === 'fire').every((a) => a.rule === 'smoke_prealarm' && a.escalationLevel === 0)).toBe(true);
    expect(p.alerts.lifecycle.audit(pre.id)?.some((e) => e.action === 'escalated')).toBe(false);
  });

  it('an alarm-level reading held through 60 s becomes a verified smoke alarm (critical, latching) at the window end', async () => {
    const sd = await p.device('h01-sd-r105');
    await sd.telemetry({ smoke_obscuration_pct_per_m: 5 });
    p.clock.advance(30 * S);
    await sd.telemetry({ smoke_obscuration_pct_per_m: 6 });
    p.clock.advance(29 * S);
    expect(openFor('h01-sd-r105').map((a) => a.rule)).toEqual(['smoke_prealarm']);
    p.clock.advance(1 * S);
    // The detector reports every 30 s: the window end waits for its reading due now (the tick alone
    // would verify only once that reading is overdue, rules/fire/smoke.ts), and it shows the smoke held.
    expect(openFor('h01-sd-r105').map((a) => a.rule)).toEqual(['smoke_prealarm']);
    await sd.telemetry({ smoke_obscuration_pct_per_m: 6.5 });
    const alarm = await until(() => ofDevice(bureau, 'h01-sd-r105', 'smoke_alarm')[0], 'verified alarm at the bureau');
    expect(alarm).toMatchObject({ severity: 'critical', signal: 'alarm', state: 'raised', escalationLevel: 0 });
    expect(alarm.raisedAt - ofDevice(staff1, 'h01-sd-r105', 'smoke_prealarm')[0]!.raisedAt).toBe(60 * S);
    expect(ofDevice(staff1, 'h01-sd-r105', 'fire_confirmed')).toEqual([]);
    expect(staff2.alerts.filter((a) => a.homeId !== 'h02')).toEqual([]);
  });
});

describe('multi-criteria confirmation: a confirmed fire at once, to the bureau at once', () => {
  async function confirmedIn(roomId: string): Promise<AlertMessage> {
    return until(() => bureau.alerts.find((a) => a.rule === 'fire_confirmed' && a.roomId === roomId && a.escalationLevel === 2), `confirmed fire in ${roomId} at the bureau`);
  }
  function expectAtOnce(fire: AlertMessage, t0: number): void {
    expect(fire).toMatchObject({ homeId: 'h01', category: 'fire', signal: 'alarm', severity: 'critical', state: 'escalated', escalationLevel: 2 });
    expect(fire.raisedAt).toBe(t0);
    expect(fire.ts).toBe(t0); // escalated in the same instant, no 15 s wait
    expect(p.alerts.lifecycle.audit(fire.id)?.find((e) => e.action === 'escalated')).toMatchObject({ reason: 'confirmed_fire', toState: 'escalated' });
  }

  it('two detectors in adjoining rooms', async () => {
    const a = await p.device('h01-sd-r301');
    const b = await p.device('h01-sd-r302');
    await a.telemetry({ smoke_obscuration_pct_per_m: 6 });
    p.clock.advance(5 * S);
    const t0 = p.clock.now();
    await b.telemetry({ smoke_obscuration_pct_per_m: 7 });
    expectAtOnce(await confirmedIn('r302'), t0);
    // Verification was skipped: no separate verified smoke alarm follows a minute later.
    p.clock.advance(120 * S);
    expect(bureau.alerts.filter((x) => x.rule === 'smoke_alarm' && (x.roomId === 'r301' || x.roomId === 'r302'))).toEqual([]);
  });

  it('smoke plus heat rise in one room', async () => {
    const sd = await p.device('h01-sd-r201');
    await sd.telemetry({ smoke_obscuration_pct_per_m: 2.5, temperature_c: 61 });
    p.clock.advance(2 * S);
    const t0 = p.clock.now();
    await sd.telemetry({ smoke_obscuration_pct_per_m: 2.8, temperature_c: 63 });
    const fire = await confirmedIn('r201');
    expectAtOnce(fire, t0);
    expect(fire.message.en).toContain('smoke and heat');
  });

  it('a manual call point', async () => {
    const mcp = await p.device('h01-mcp-f1-corridor');
    const t0 = p.clock.now();
    await mcp.event('manual_call_point');
    const fire = await confirmedIn('f1-corridor');
    expectAtOnce(fire, t0);
    expect(fire.message.en).toContain('manual call point');
  });

  it("a detector's own detector_alarm event", async () => {
    const sd = await p.device('h01-sd-office');
    const t0 = p.clock.now();
    await sd.event('detector_alarm');
    const fire = await confirmedIn('office');
    expectAtOnce(fire, t0);
    expect(staff1.alerts.some((a) => a.id === fire.id)).toBe(true);
    expect(staff2.alerts.some((a) => a.id === fire.id)).toBe(false);
  });
});
