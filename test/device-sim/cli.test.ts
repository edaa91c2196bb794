import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { createSimulator, type Simulator } from '../../device-sim/simulator.ts';
import { demoRegistry } from '../support/registry.ts';
import { observe, startAedes, type TestBroker } from './support/aedes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const clock = createManualClock(Date.UTC(2026, 0, 1, 2));
let broker: TestBroker;
let obs: Awaited<ReturnType<typeof observe>>;
let sim: Simulator;

/** Runs the CLI as its own process (asynchronously: the control API lives in this process). */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'device-sim/cli.ts', ...args], { cwd: ROOT, env: { ...process.env, CAREWATCH_SIM_CONTROL_URL: sim.controlUrl() ?? '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  broker = await startAedes();
  obs = await observe(broker.url);
  sim = createSimulator({ config: { mqttUrl: broker.url, homes: ['h02'], controlPort: 0 }, registry: demoRegistry(), logger: pino({ level: 'silent' }), clock });
  await sim.start();
});

afterAll(async () => {
  await sim?.close();
  await obs?.close();
  await broker?.close();
});

describe('CLI → control API → scenario', () => {
  it('starts a fire from the command line, and the room detector publishes alarm-level smoke', async () => {
    const r = await cli('fire', 'h02', 'r101');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { id } = JSON.parse(r.stdout) as { id: string };
    expect(sim.scenario.list().map((s) => s.id)).toEqual([id]);
    for (let i = 0; i < 60; i++) {
      clock.advance(2000);
      await new Promise((res) => setImmediate(res));
    }
    const topic = deviceTopic('h02', 'h02-sd-r101', 'telemetry');
    await obs.waitFor((m) => m.topic === topic && ((JSON.parse(m.payload.toString()) as { metrics: { smoke_obscuration_pct_per_m?: number } }).metrics.smoke_obscuration_pct_per_m ?? 0) >= 4, 'smoke ≥ 4 %/m');
    const cleared = await cli('clear', id);
    expect(cleared.code).toBe(0);
    expect(sim.scenario.list()).toEqual([]);
  });

  it("presses a call button from the command line: a resident's bedside nurse call, or a bathroom's pull cord", async () => {
    const isSos = (deviceId: string) => (m: { topic: string; payload: Buffer }) =>
      m.topic === deviceTopic('h02', deviceId, 'event') && (JSON.parse(m.payload.toString()) as { type: string }).type === 'sos_button';
    const byResident = await cli('call', 'h02-p01');
    expect(byResident.stderr).toBe('');
    expect(byResident.code).toBe(0);
    expect((JSON.parse(byResident.stdout) as { devices: string[] }).devices).toEqual(['h02-nc-p01']);
    await obs.waitFor(isSos('h02-nc-p01'), 'sos_button from h02-nc-p01');
    const byRoom = await cli('call', 'h02', 'f1-bath');
    expect(byRoom.code).toBe(0);
    await obs.waitFor(isSos('h02-nc-f1-bath'), 'sos_button from h02-nc-f1-bath');
    // A press is momentary: the scenario ends by itself.
    clock.advance(5_000);
    expect(sim.scenario.list().filter((s) => s.name === 'call')).toEqual([]);
    const nobody = await cli('call', 'h02-nobody');
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain('SIM_UNKNOWN_TARGET');
  });

  it('bad arguments exit 2 with the usage; an unknown room exits 1 with the stable code; list prints the devices', async () => {
    const [bad, unknown, list] = await Promise.all([cli('fire', 'h02'), cli('fire', 'h02', 'r999'), cli('list')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('missing <room>');
    expect(bad.stderr).toContain('usage:');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('SIM_UNKNOWN_TARGET');
    expect(list.code).toBe(0);
    expect(list.stdout.trim().split('\n')).toHaveLength(demoRegistry().devicesOfHome('h02').length);
    expect(list.stdout).toContain('h02-sd-r101');
  });
});

describe('control API origin checks', () => {
  it('refuses a cross-site "simple" POST (text/plain) and a foreign Host, and starts nothing', async () => {
    const url = `${sim.controlUrl() ?? ''}/scenario`;
    const body = JSON.stringify({ name: 'fire', target: 'h02/r102', options: {} });
    const before = sim.scenario.list().length;
    const plain = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as { message: string }).message).toMatch(/application\/json/);
    // fetch will not set Host, so a DNS-rebinding request is made with node:http.
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', host: 'evil.example:8090' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(rebound).toBe(400);
    expect(sim.scenario.list().length).toBe(before);
    const ok = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(ok.status).toBe(200);
  });
});
