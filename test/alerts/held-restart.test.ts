import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { Actor } from '../../alerts/access.ts';
import { REARM_AFTER_MS, STILL_ACTIVE_REASON } from '../../alerts/lifecycle.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { startAlerts, tempDir } from './support/harness.ts';

/**
 * Reviewer's repro: a condition stays active, staff acknowledge, confirm and resolve it, the alerts
 * process restarts inside the re-raise hold, and no further reading arrives (rules signal on edges;
 * the restored rule state still says active). The held condition must still come back.
 */
const influx = testInflux('alerts_held');
const registry = demoRegistry();
const staff: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));

describe('a condition held after a manual resolve', () => {
  it('is re-raised after a restart inside the hold', async () => {
    const clock = createManualClock();
    const dir = await tempDir();
    dirs.push(dir);
    const a = await startAlerts({ influx, stateDir: dir.path, clock });
    const now = clock.now();
    const input: RuleInput = { type: 'telemetry', now, device: registry.device('h01-sd-r101')!, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: 18 } };
    a.handleInput(input);
    const fire = a.lifecycle.open()[0]!;
    expect(a.lifecycle.ack(fire.id, staff).ok).toBe(true);
    expect(a.lifecycle.confirm(fire.id, staff, 'fault', 'detector stuck').ok).toBe(true);
    expect(a.lifecycle.resolve(fire.id, staff, 'reset').ok).toBe(true);
    expect(a.lifecycle.open()).toEqual([]);
    await a.drained();
    await a.close();

    clock.advance(60_000); // down for a minute, well inside the 5 min hold
    const b = await startAlerts({ influx, stateDir: dir.path, clock });
    expect(b.lifecycle.open()).toEqual([]);
    clock.advance(REARM_AFTER_MS - 60_000 - 1);
    expect(b.lifecycle.open()).toEqual([]); // not before the original due time
    clock.advance(1); // exactly at it; no new reading arrived
    const again = b.lifecycle.open();
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ homeId: 'h01', deviceId: 'h01-sd-r101', rule: 'test_smoke', state: 'raised', version: 1 });
    expect(again[0]!.id).not.toBe(fire.id);
    expect(b.lifecycle.audit(again[0]!.id)?.[0]).toMatchObject({ action: 'raised', reason: STILL_ACTIVE_REASON });
    await b.drained();
    await b.close();
  });
});
