import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import type { Actor } from '../../alerts/access.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { influxQuery, testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { startAlerts, tempDir } from './support/harness.ts';

/** Issue 11: incidents and their audit survive a restart exactly as alerts do (InfluxDB, journal, snapshot). */
const registry = demoRegistry();
const staff: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));

function smoke(deviceId: string, now: number): RuleInput {
  return { type: 'telemetry', now, device: registry.device(deviceId)!, ts: now, receivedTs: now, metrics: { smoke_obscuration_pct_per_m: 18 } };
}

describe('incidents across a restart', () => {
  it('come back from InfluxDB (no local snapshot) with their acknowledgement, audit, members and countdown', async () => {
    const influx = testInflux('alerts_incident_restart');
    const clock = createManualClock();
    const dir = await tempDir();
    dirs.push(dir);
    const a = await startAlerts({ influx, stateDir: dir.path, clock });
    a.handleInput(smoke('h01-sd-r101', clock.now()));
    clock.advance(2000);
    a.handleInput(smoke('h01-sd-r102', clock.now()));
    const [incident] = a.lifecycle.openIncidents();
    expect(incident?.points).toHaveLength(2);
    clock.advance(3000);
    expect(a.lifecycle.ackIncident(incident!.id, staff).ok).toBe(true);
    const before = a.lifecycle.incident(incident!.id)!;
    const trail = a.lifecycle.incidentAudit(incident!.id)!.map((e) => [e.seq, e.action]);
    await a.drained();
    await a.close();
    const stored = await influxQuery(influx.url, influx.database, `SELECT count("json") FROM "incident"`);
    expect(stored[0]?.values[0]?.[1]).toBe(before.version);
    await rm(join(dir.path, 'rule-states.json'));

    clock.advance(60_000);
    const b = await startAlerts({ influx, stateDir: dir.path, clock });
    expect(b.lifecycle.openIncidents()).toHaveLength(1);
    expect(b.lifecycle.incident(incident!.id)).toEqual(before);
    expect(b.lifecycle.incidentAudit(incident!.id)?.map((e) => [e.seq, e.action])).toEqual(trail);
    expect(b.lifecycle.open().map((x) => x.incidentId)).toEqual([incident!.id, incident!.id]);
    // The 180 s investigation countdown runs from the acknowledgement, not from the restart.
    clock.advance(180_000 - 60_000 - 1);
    expect(b.lifecycle.incident(incident!.id)?.escalationLevel).toBe(0);
    clock.advance(1);
    expect(b.lifecycle.incident(incident!.id)).toMatchObject({ escalationLevel: 2, version: before.version + 1 });
    expect(b.lifecycle.incidentAudit(incident!.id)?.at(-1)).toMatchObject({ seq: trail.length + 1, action: 'escalated', reason: 'confirm_deadline' });
    // Still one incident: a new point next door joins it and re-alerts it (journaled too).
    b.handleInput(smoke('h01-sd-f1-corridor', clock.now()));
    expect(b.lifecycle.openIncidents().map((i) => i.points.length)).toEqual([3]);
    // (The incident is at the bureau level: the new point records that level at once, point_updated.)
    expect(b.lifecycle.incidentAudit(incident!.id)?.slice(-3).map((e) => e.action)).toEqual(['realerted', 'point_added', 'point_updated']);
    await b.drained();
    const audit = await influxQuery(influx.url, influx.database, `SELECT "json" FROM "incident_audit"`);
    expect(audit[0]?.values.length).toBe(b.lifecycle.incidentAudit(incident!.id)?.length);
    await b.close();
  });

  it('an alert and its incident resolved after the last snapshot stay resolved when the process restarts from that snapshot', async () => {
    // The snapshot (rule states, open alerts and incidents) is cut every few seconds; InfluxDB and the
    // journal have every change. A crash after a resolution and before the next cut left the cut's
    // open copies newer than anything open in InfluxDB, and they came back open (session 12).
    const influx = testInflux('alerts_resolved_restart');
    const clock = createManualClock();
    const dir = await tempDir();
    dirs.push(dir);
    const snapshot = join(dir.path, 'rule-states.json');
    const a = await startAlerts({ influx, stateDir: dir.path, clock });
    a.handleInput(smoke('h01-sd-r101', clock.now()));
    const [incident] = a.lifecycle.openIncidents();
    expect(a.lifecycle.open()).toHaveLength(1);
    await a.drained();
    await a.close();
    await copyFile(snapshot, `${snapshot}.cut`); // the last cut: one open alert, one open incident

    clock.advance(5_000);
    const b = await startAlerts({ influx, stateDir: dir.path, clock });
    expect(b.lifecycle.openIncidents().map((i) => i.id)).toEqual([incident!.id]);
    expect(b.lifecycle.ackIncident(incident!.id, staff).ok).toBe(true);
    expect(b.lifecycle.confirmIncident(incident!.id, staff, 'fault', 'detector stuck').ok).toBe(true);
    expect(b.lifecycle.resolveIncident(incident!.id, staff, 'reset').ok).toBe(true);
    expect(b.lifecycle.open()).toEqual([]);
    expect(b.lifecycle.openIncidents()).toEqual([]);
    await b.drained();
    await b.close();
    await copyFile(`${snapshot}.cut`, snapshot); // killed before the next cut: the file is the old one

    clock.advance(5_000);
    const c = await startAlerts({ influx, stateDir: dir.path, clock });
    expect(c.lifecycle.open()).toEqual([]);
    expect(c.lifecycle.openIncidents()).toEqual([]);
    await c.close();
  });
});
