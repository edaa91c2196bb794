import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { decodeDeviceMessage } from '../../contract/device-message.ts';
import { deviceTopic, parseTopic } from '../../contract/topics.ts';
import { createSimulator, type Simulator } from '../../device-sim/simulator.ts';
import { demoRegistry } from '../support/registry.ts';
import { observe, startAedes, type Captured, type TestBroker } from './support/aedes.ts';

const registry = demoRegistry();
const HOME = 'h01';
const homeDevices = registry.devicesOfHome(HOME);
const clock = createManualClock(Date.UTC(2026, 0, 1, 2));
let broker: TestBroker;
let obs: Awaited<ReturnType<typeof observe>>;
let sim: Simulator;

const json = (m: Captured): Record<string, unknown> => JSON.parse(m.payload.toString()) as Record<string, unknown>;
const on = (deviceId: string, channel: 'telemetry' | 'event' | 'status') => (m: Captured) => m.topic === deviceTopic(HOME, deviceId, channel);

/** Advances device time in steps, letting sockets flush between steps. */
async function advance(ms: number, stepMs = 2000): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(Math.min(stepMs, ms - t));
    await new Promise((r) => setImmediate(r));
  }
}

beforeAll(async () => {
  broker = await startAedes();
  obs = await observe(broker.url);
  sim = createSimulator({ config: { mqttUrl: broker.url, homes: [HOME], seed: 3 }, registry, logger: pino({ level: 'silent' }), clock });
  await sim.start();
});

afterAll(async () => {
  await sim?.close();
  await obs?.close();
  await broker?.close();
});

describe('simulator against an in-process broker', () => {
  it('connects every device of the selected home with its own credentials, keepalive 60 and a retained QoS 1 last will', () => {
    expect(sim.devices().length).toBe(homeDevices.length);
    expect(homeDevices.length).toBeGreaterThan(20);
    for (const d of homeDevices) {
      const login = broker.logins.get(d.id);
      expect(login, d.id).toBeDefined();
      expect(login?.password).toBe(`demo-${d.id}`);
      expect(login?.clientId).toBe(d.id);
      expect(login?.keepalive).toBe(60);
      expect(login?.will).toEqual({ topic: deviceTopic(HOME, d.id, 'status'), payload: '{"online":false}', qos: 1, retain: true });
    }
    expect([...broker.logins.keys()].filter((u) => u.startsWith('h02'))).toEqual([]);
  });

  it('leaves a retained online status for every device', async () => {
    const late = await observe(broker.url);
    try {
      for (const d of homeDevices) {
        const m = await late.waitFor((x) => on(d.id, 'status')(x), `retained status of ${d.id}`);
        expect(m.retain).toBe(true);
        expect(m.qos).toBe(1);
        const r = decodeDeviceMessage(m.topic, m.payload, registry);
        expect(r.ok && r.channel === 'status' && r.payload.online).toBe(true);
      }
    } finally {
      await late.close();
    }
  });

  it('publishes routine telemetry at QoS 0 on each kind’s interval, staggered, with ts and per-device seq, all valid per the contract', async () => {
    const from = obs.messages.length;
    const t0 = clock.now();
    await advance(60_000, 5000);
    // Wait for each device's last published message, so nothing is still in flight.
    for (const d of homeDevices) {
      const lastSeq = (sim.device(d.id)?.info().seq ?? 0) - 1;
      await obs.waitFor((m) => on(d.id, 'telemetry')(m) && (json(m).seq as number) >= lastSeq && (json(m).ts as number) > t0, `telemetry of ${d.id}`);
    }
    const msgs = obs.messages.slice(from).filter((m) => parseTopic(m.topic)?.kind === 'device' && m.topic.endsWith('/telemetry'));
    const bad = msgs.map((m) => decodeDeviceMessage(m.topic, m.payload, registry)).filter((r) => !r.ok);
    expect(bad).toEqual([]);
    expect(msgs.filter((m) => m.qos !== 0).map((m) => `${m.topic} ${m.payload.toString()}`)).toEqual([]);
    const seqs = new Map<string, number[]>();
    const tsSet = new Set<number>();
    for (const m of msgs) {
      const p = json(m);
      seqs.set(m.topic, [...(seqs.get(m.topic) ?? []), p.seq as number]);
      tsSet.add(p.ts as number);
      expect(p.ts as number).toBeGreaterThan(t0);
      expect(p.ts as number).toBeLessThanOrEqual(clock.now());
    }
    for (const [topic, s] of seqs) expect(s, topic).toEqual([...s].sort((a, b) => a - b));
    // 10 s smoke detectors publish 6 times a minute: the interval is respected.
    expect(seqs.get(deviceTopic(HOME, 'h01-sd-r101', 'telemetry'))?.length).toBe(6);
    // Staggered: readings do not all share a few instants.
    expect(tsSet.size).toBeGreaterThan(20);
  });

  it('a flaming fire publishes alarm-level telemetry at QoS 1 and a detector_alarm event for the room’s detectors', async () => {
    const from = obs.messages.length;
    const id = sim.scenario.fire(HOME, 'r101');
    await advance(240_000);
    const hot = await obs.waitFor((m) => on('h01-sd-r101', 'telemetry')(m) && ((json(m).metrics as Record<string, number>).temperature_c ?? 0) >= 58, 'room detector at 58 °C');
    expect(hot.qos).toBe(1);
    const news = obs.messages.slice(from);
    const smoky = news.filter((m) => on('h01-sd-r101', 'telemetry')(m) && ((json(m).metrics as Record<string, number>).smoke_obscuration_pct_per_m ?? 0) >= 4);
    expect(smoky.length).toBeGreaterThan(10);
    expect(smoky.every((m) => m.qos === 1)).toBe(true);
    const alarm = await obs.waitFor((m) => on('h01-sd-r101', 'event')(m) && json(m).type === 'detector_alarm', 'detector_alarm event');
    expect(alarm.qos).toBe(1);
    // Smoke also reaches the corridor detector next door.
    await obs.waitFor((m) => on('h01-sd-f1-corridor', 'telemetry')(m) && ((json(m).metrics as Record<string, number>).smoke_obscuration_pct_per_m ?? 0) >= 4, 'corridor smoke');
    expect(news.map((m) => decodeDeviceMessage(m.topic, m.payload, registry)).filter((r) => !r.ok)).toEqual([]);
    expect(sim.scenario.clear(id)).toBe(1);
    expect(sim.scenario.list()).toEqual([]);
  });

  it('deviceOffline drops the socket without DISCONNECT so the last will appears; deviceOnline brings the device back', async () => {
    const dev = 'h01-sd-r102';
    const from = obs.messages.length;
    sim.scenario.deviceOffline(dev);
    const will = await obs.waitFor((m) => obs.messages.indexOf(m) >= from && on(dev, 'status')(m) && json(m).online === false, 'last will');
    expect(json(will)).toEqual({ online: false });
    expect(sim.device(dev)?.info().connected).toBe(false);
    // An offline device publishes nothing.
    const seqBefore = sim.device(dev)?.info().seq;
    await advance(30_000, 5000);
    expect(sim.device(dev)?.info().seq).toBe(seqBefore);
    const back = obs.messages.length;
    expect(sim.scenario.deviceOnline(dev)).toBe(1);
    await obs.waitFor((m) => obs.messages.indexOf(m) >= back && on(dev, 'status')(m) && json(m).online === true, 'online again');
  });

  it('a whole home going offline fires every device’s will; clearing it reconnects them all', async () => {
    const from = obs.messages.length;
    const id = sim.scenario.homeOffline(HOME);
    for (const d of homeDevices) await obs.waitFor((m) => obs.messages.indexOf(m) >= from && on(d.id, 'status')(m) && json(m).online === false, `will of ${d.id}`);
    const back = obs.messages.length;
    expect(sim.scenario.clear(id)).toBe(1);
    for (const d of homeDevices) await obs.waitFor((m) => obs.messages.indexOf(m) >= back && on(d.id, 'status')(m) && json(m).online === true, `online ${d.id}`);
  });

  it('care scenarios publish events at QoS 1: a bed exit with return', async () => {
    const from = obs.messages.length;
    sim.scenario.bedExit('h01-p03', { returnAfterMs: 60_000 });
    await advance(120_000);
    const exit = await obs.waitFor((m) => obs.messages.indexOf(m) >= from && on('h01-bed-p03', 'event')(m) && json(m).type === 'bed_exit', 'bed_exit');
    const ret = await obs.waitFor((m) => obs.messages.indexOf(m) >= from && on('h01-bed-p03', 'event')(m) && json(m).type === 'bed_return', 'bed_return');
    expect(exit.qos).toBe(1);
    expect((json(ret).ts as number) - (json(exit).ts as number)).toBeGreaterThanOrEqual(60_000);
    // The scenario ended by itself after the return.
    expect(sim.scenario.list()).toEqual([]);
  });

  it('refuses scenarios on homes it does not simulate, with a stable code', () => {
    expect(() => sim.scenario.fire('h02', 'r101')).toThrow(expect.objectContaining({ code: 'SIM_NOT_SIMULATED' }));
  });
});
