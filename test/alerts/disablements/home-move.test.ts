import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import type { Actor } from '../../../alerts/access.ts';
import type { Alerts } from '../../../alerts/alerts.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { startAlerts, tempDir } from '../support/harness.ts';
import { testRules } from '../support/test-rules.ts';

/**
 * A condition held back by a test-mode disablement moves with its home (docs/scaling.md "Moving a
 * home"). Held conditions lived only in the instance's disablements.json, and every instance loads
 * every home's disablements: until session 23, after h01 moved from A to B, the disablement's end
 * raised the still-active smoke on A, which no longer owns h01 (nobody of h01's page or ladder is
 * there), and nothing on B, the owner (a helper's hunt, session 22).
 */
const influx = testInflux('disablement_home_move');
const registry = demoRegistry();
const director: Actor = { username: 'director-h01', role: 'director', homeId: 'h01' };
const running: Alerts[] = [];
let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
afterAll(async () => {
  for (const a of running) await a.close();
  await dir?.remove();
});

it("raises a condition held by a disablement on the home's new owner when the disablement ends, and not on the old one", async () => {
  const clock = createManualClock();
  dir = await tempDir('alerts-disablement-move-');
  const homes = join(dir.path, 'homes');
  const start = async (instance: string, owned: string): Promise<Alerts> => {
    const a = await startAlerts({ influx, stateDir: join(dir?.path ?? '', instance), clock, registry, rules: testRules().filter((r) => r.id === 'test_smoke'), config: { homes: owned, instance, homeStateDir: homes } });
    running.push(a);
    return a;
  };
  const a = await start('a', 'h01,h02');
  expect(a.disablements.create(director, 'h01', { scope: 'device', targetId: 'h01-sd-r101', mode: 'test', reason: 'annual test', durationMin: 30 }).ok).toBe(true);
  const now = clock.now();
  a.handleInput({ type: 'telemetry', now, device: registry.device('h01-sd-r101')!, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: 18 } });
  expect(a.lifecycle.open()).toEqual([]);
  expect(a.disablements.stats().held).toBe(1);
  // The move: A restarted without h01, B started with it.
  await a.drained();
  await a.close();
  running.splice(running.indexOf(a), 1);
  const a2 = await start('a', 'h02');
  const b = await start('b', 'h01');
  expect(a2.disablements.stats().held).toBe(0);
  expect(b.disablements.stats().held).toBe(1);
  clock.advance(30 * 60_000);
  expect(b.lifecycle.open().map((x) => [x.homeId, x.deviceId])).toEqual([['h01', 'h01-sd-r101']]);
  expect(a2.lifecycle.open()).toEqual([]);
});
