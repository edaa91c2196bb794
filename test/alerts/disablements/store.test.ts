import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../../common/clock.ts';
import type { Actor } from '../../../alerts/access.ts';
import { createDisablementStore, type DisablementStore } from '../../../alerts/disablements/store.ts';
import type { Signal } from '../../../alerts/rules/types.ts';
import type { Disablement, DisablementRequest } from '../../../contract/incidents.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { tempDir } from '../support/harness.ts';
import { careSignal, fireSignal } from '../support/signals.ts';

const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));

const MIN = 60_000;
const director: Actor = { username: 'director-h01', role: 'director', homeId: 'h01' };
const staff: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const bureau: Actor = { username: 'bureau', role: 'bureau' };
const request: DisablementRequest = { scope: 'device', targetId: 'h01-sd-r101', mode: 'test', reason: 'annual detector test', durationMin: 30 };

interface Rig {
  store: DisablementStore;
  changes: Disablement[];
  released: Signal[];
}

/** One database per state dir: a restore reads every disablement of its database. */
const databases = new Map<string, { url: string; database: string }>();
function influxOf(dir: string): { url: string; database: string } {
  let db = databases.get(dir);
  if (db === undefined) databases.set(dir, (db = testInflux('disablements')));
  return db;
}

async function rig(clock: ManualClock, dir: string, opts: { ids?: string[] } = {}): Promise<Rig> {
  const influx = influxOf(dir);
  const changes: Disablement[] = [];
  const released: Signal[] = [];
  const ids = [...(opts.ids ?? ['d1', 'd2', 'd3'])];
  const store = createDisablementStore({
    registry: demoRegistry(),
    clock,
    logger: pino({ level: 'silent' }),
    statePath: join(dir, 'disablements.json'),
    history: { influxUrl: influx.url, database: influx.database, journalPath: join(dir, 'disablement-journal.jsonl') },
    newId: () => ids.shift() ?? 'dx',
    onChange: (d) => changes.push(d),
    onRelease: (s) => released.push(...s),
  });
  await store.start();
  return { store, changes, released };
}

async function newDir(): Promise<string> {
  const d = await tempDir('disablements-');
  dirs.push(d);
  return d.path;
}

function created(r: Rig, req: DisablementRequest = request, actor: Actor = director, home = 'h01'): Disablement {
  const out = r.store.create(actor, home, req);
  if (!out.ok) throw new Error(`${out.code}: ${out.message}`);
  return out.value;
}

describe('a disablement in force', () => {
  it('holds back the fire signals of its point, counts and audits each suppressed condition once, passes care and clears', async () => {
    const clock = createManualClock();
    const r = await rig(clock, await newDir());
    const d = created(r);
    expect(d).toMatchObject({ id: 'd1', homeId: 'h01', mode: 'test', by: 'director-h01', startedAt: clock.now(), until: clock.now() + 30 * MIN, suppressedSignals: 0, version: 1 });
    const smoke = fireSignal({ sourceTs: clock.now() - 5 });
    const care = careSignal();
    expect(r.store.filter([smoke, care])).toEqual([care]);
    expect(r.store.filter([{ ...smoke, value: 20 }])).toEqual([]); // the same condition again: no new count
    const after = r.store.inForce('h01')[0]!;
    expect(after).toMatchObject({ suppressedSignals: 1, version: 2 });
    const clear = fireSignal({ active: false });
    expect(r.store.filter([clear])).toEqual([clear]);
    expect(r.store.stats()).toMatchObject({ inForce: 1, disabledPoints: 1, held: 0, suppressed: 1 });
    const found = await r.store.find(director, 'd1');
    if (!found.ok) throw new Error(found.code);
    expect(found.value.audit.map((e) => e.action)).toEqual(['created', 'signal_suppressed']);
    expect(found.value.audit[1]).toMatchObject({ rule: 'smoke_alarm', deviceId: 'h01-sd-r101', roomId: 'r101', sourceTs: smoke.sourceTs, by: 'system', key: smoke.key });
    expect(found.value.audit[0]).toMatchObject({ by: 'director-h01', reason: 'annual detector test' });
    // Every change went to the listeners, with its version.
    expect(r.changes.map((c) => c.version)).toEqual([1, 2]);
    await r.store.close();
  });

  it('ends by itself at its end time (a clock timer), audited as expired, and then signals go through', async () => {
    const clock = createManualClock();
    const r = await rig(clock, await newDir());
    const d = created(r);
    clock.advance(30 * MIN - 1);
    expect(r.store.inForce()).toHaveLength(1);
    clock.advance(1);
    expect(r.store.inForce()).toEqual([]);
    const found = await r.store.find(bureau, d.id);
    if (!found.ok) throw new Error(found.code);
    expect(found.value.disablement).toMatchObject({ endedAt: d.until, endedBy: 'system', version: 2 });
    expect(found.value.audit.map((e) => e.action)).toEqual(['created', 'expired']);
    expect(r.store.filter([fireSignal()])).toHaveLength(1);
    expect(r.changes.at(-1)).toMatchObject({ id: d.id, endedAt: d.until });
    expect(clock.pending()).toBe(0);
    await r.store.close();
  });

  it('a condition still active when it ends is raised then; one that cleared meanwhile is not', async () => {
    const clock = createManualClock();
    const r = await rig(clock, await newDir());
    created(r, { ...request, scope: 'room', targetId: 'plant', mode: 'disabled' });
    const stillOn = fireSignal({ key: 'electrical:h01-ef-plant', rule: 'electrical_alarm', deviceId: 'h01-ef-plant', roomId: 'plant' });
    const gone = fireSignal({ key: 'smoke_alarm:h01-sd-plant', deviceId: 'h01-sd-plant', roomId: 'plant' });
    expect(r.store.filter([stillOn, gone])).toEqual([]);
    r.store.filter([{ ...gone, active: false }]);
    clock.advance(30 * MIN);
    expect(r.released).toEqual([stillOn]);
    const found = await r.store.find(director, 'd1');
    if (!found.ok) throw new Error(found.code);
    expect(found.value.audit.map((e) => e.action)).toEqual(['created', 'signal_suppressed', 'signal_suppressed', 'expired', 'signal_released']);
    await r.store.close();
  });

  it('ended early by the director: audited with the person, held conditions released; staff and bureau may not end it', async () => {
    const clock = createManualClock();
    const r = await rig(clock, await newDir());
    created(r);
    r.store.filter([fireSignal()]);
    expect(r.store.end(staff, 'd1')).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    expect(r.store.end(bureau, 'd1')).toMatchObject({ ok: false, code: 'AUTH_FORBIDDEN' });
    expect(r.store.end({ username: 'director-h02', role: 'director', homeId: 'h02' }, 'd1')).toMatchObject({ ok: false, code: 'DISABLEMENT_NOT_FOUND' });
    clock.advance(5 * MIN);
    const ended = r.store.end(director, 'd1');
    expect(ended).toMatchObject({ ok: true, value: { endedAt: clock.now(), endedBy: 'director-h01' } });
    expect(r.released.map((s) => s.key)).toEqual([fireSignal().key]);
    expect(r.store.end(director, 'd1')).toMatchObject({ ok: false, code: 'DISABLEMENT_ENDED' });
    expect(clock.pending()).toBe(0); // the expiry timer went with it
    expect(r.store.visibleTo(director)).toEqual([]);
    expect(r.store.visibleTo(director, { includeEnded: true }).map((d) => d.id)).toEqual(['d1']);
    expect(r.store.stats().rejected).toMatchObject({ AUTH_FORBIDDEN: 2, DISABLEMENT_NOT_FOUND: 1, DISABLEMENT_ENDED: 1 });
    await r.store.close();
  });

  it('staff see their home, bureau all; a director of another home cannot see or create one here', async () => {
    const clock = createManualClock();
    const r = await rig(clock, await newDir());
    created(r);
    created(r, { ...request, targetId: 'h02-sd-r101' }, { username: 'admin', role: 'admin' }, 'h02');
    expect(r.store.visibleTo(staff).map((d) => d.homeId)).toEqual(['h01']);
    expect(r.store.visibleTo(bureau).map((d) => d.homeId).sort()).toEqual(['h01', 'h02']);
    expect(r.store.create({ username: 'director-h02', role: 'director', homeId: 'h02' }, 'h01', request)).toMatchObject({ ok: false, code: 'HOME_NOT_FOUND' });
    expect(await r.store.find({ username: 'staff-h02', role: 'staff', homeId: 'h02' }, 'd1')).toMatchObject({ ok: false, code: 'DISABLEMENT_NOT_FOUND' });
    await r.store.close();
  });
});

describe('restarts', () => {
  it('a restart restores it, its audit and the held conditions, and its timer: it still ends by itself and raises what is still active', async () => {
    const clock = createManualClock();
    const dir = await newDir();
    const first = await rig(clock, dir);
    const d = created(first);
    first.store.filter([fireSignal()]);
    clock.advance(10 * MIN);
    await first.store.close();

    const second = await rig(clock, dir);
    expect(second.store.inForce()).toEqual([{ ...d, suppressedSignals: 1, version: 2 }]);
    expect(second.store.filter([fireSignal()])).toEqual([]); // still held: no new onset
    expect(second.store.inForce()[0]?.suppressedSignals).toBe(1);
    clock.advance(20 * MIN);
    expect(second.store.inForce()).toEqual([]);
    expect(second.released.map((s) => s.key)).toEqual([fireSignal().key]);
    const found = await second.store.find(director, d.id);
    if (!found.ok) throw new Error(found.code);
    expect(found.value.audit.map((e) => e.action)).toEqual(['created', 'signal_suppressed', 'expired', 'signal_released']);
    await second.store.close();
  });

  it('one whose end passed while the process was down ends at its end time when the process starts', async () => {
    const clock = createManualClock();
    const dir = await newDir();
    const first = await rig(clock, dir);
    const d = created(first);
    await first.store.close();
    clock.advance(2 * 3600_000);
    const second = await rig(clock, dir);
    expect(second.store.inForce()).toEqual([]);
    expect(second.store.visibleTo(director, { includeEnded: true })[0]).toMatchObject({ id: d.id, endedAt: d.until, endedBy: 'system' });
    await second.store.close();
  });

  it('without the state file it is restored from InfluxDB (measurements disablement and disablement_audit)', async () => {
    const clock = createManualClock();
    const dir = await newDir();
    const first = await rig(clock, dir, { ids: ['influx-1'] });
    const d = created(first);
    first.store.filter([fireSignal()]);
    await first.store.drained();
    await first.store.close();
    const influx = influxOf(dir);
    const stored = await influxQuery(influx.url, influx.database, `SELECT "version" FROM "disablement" WHERE "disablement_id" = 'influx-1'`);
    expect(stored[0]?.values.map((v) => v[1])).toEqual([1, 2]);
    await rm(join(dir, 'disablements.json'));

    const second = await rig(clock, dir);
    expect(second.store.inForce()).toEqual([{ ...d, suppressedSignals: 1, version: 2 }]);
    const found = await second.store.find(director, d.id);
    if (!found.ok) throw new Error(found.code);
    expect(found.value.audit.map((e) => e.action)).toEqual(['created', 'signal_suppressed']);
    clock.advance(30 * MIN);
    expect(second.store.inForce()).toEqual([]);
    await second.store.close();
  });
});
