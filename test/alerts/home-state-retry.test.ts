import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { Alerts } from '../../alerts/alerts.ts';
import { homeStatePath } from '../../alerts/partition.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { startAlerts, tempDir, until } from './support/harness.ts';
import { testRules } from './support/test-rules.ts';

/**
 * Partitioned mode (one state file per owned home): a save that fails is tried again whole at the
 * next period (alerts.ts snapshotFailed). Its cut had cleared the dirty marks of the homes it held,
 * so without that the next period saw nothing changed and a rule-state-only change (a reading that
 * raises nothing) never reached the file: a restart, or a move of the home to another instance, then
 * lost the rule windows it belonged to. The failure is a real one of the file system: the home's
 * file is a non-empty directory, so the save's rename fails (EISDIR) until it is removed.
 */
const influx = testInflux('home_state_retry');
const registry = demoRegistry();
const clock = createManualClock();
let dir: Awaited<ReturnType<typeof tempDir>>;
let a: Alerts;

beforeAll(async () => {
  dir = await tempDir('alerts-home-retry-');
  a = await startAlerts({ influx, stateDir: join(dir.path, 'state'), clock, registry, rules: testRules().filter((r) => r.id === 'test_smoke'), config: { homes: 'h01,h02', instance: 'a', homeStateDir: join(dir.path, 'homes') } });
});
afterAll(async () => {
  await a.close();
  await dir.remove();
});

const problems = async (): Promise<string[]> => ((await a.app.inject({ method: 'GET', url: '/health' })).json() as { problems?: string[] }).problems ?? [];
const savedAt = async (home: string): Promise<number | undefined> => {
  try {
    return (JSON.parse(await readFile(homeStatePath(join(dir.path, 'homes'), home), 'utf8')) as { savedAt: number }).savedAt;
  } catch {
    return undefined;
  }
};

it("saves a home's rule state again after a failed save, though nothing changed since", async () => {
  const device = registry.device('h01-sd-r101');
  if (device === undefined) throw new Error('no h01-sd-r101');
  const path = homeStatePath(join(dir.path, 'homes'), 'h01');
  // The home's file cannot be replaced: a directory with something in it stands at its name.
  await mkdir(path, { recursive: true });
  await writeFile(join(path, 'keep'), 'x');
  // A clean reading: rule state changes (the smoke rule counts it), no alert. The only rule here
  // (test_smoke) does not change on a tick, so nothing else marks the home dirty again.
  const now = clock.now();
  a.handleInput({ type: 'telemetry', now, device, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: 0.1 } });
  expect(a.engine.dirty()).toBe(true);
  expect(a.lifecycle.open()).toEqual([]);
  await until(async () => {
    clock.advance(3_000);
    return (await problems()).includes('ALERTS_SNAPSHOT_FAILED') || undefined;
  }, 'the failed save on /health');
  const failedAt = clock.now();
  await rm(path, { recursive: true });
  await until(async () => {
    clock.advance(3_000);
    const at = await savedAt('h01');
    return (at !== undefined && at >= failedAt && !(await problems()).includes('ALERTS_SNAPSHOT_FAILED')) || undefined;
  }, "h01's file saved again and /health clear");
  const saved = JSON.parse(await readFile(path, 'utf8')) as { home: string; rules: Record<string, unknown> };
  expect(saved.home).toBe('h01');
  expect(saved.rules).toEqual({ test_smoke: { readings: 1, over: [] } });
});
