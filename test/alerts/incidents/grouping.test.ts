import { describe, expect, it } from 'vitest';
import { adjacencyOf, groupOf, place, reAlertOf, type GroupSubject, type GroupView } from '../../../alerts/incidents/grouping.ts';
import type { RegistryIndex } from '../../../contract/registry-index.ts';
import { demoRegistry } from '../../support/registry.ts';

const adjacency = adjacencyOf(demoRegistry());
const fire = (roomId: string, over: Partial<GroupSubject> = {}): GroupSubject => ({ homeId: 'h01', category: 'fire', rule: 'smoke_alarm', roomId, deviceId: `h01-sd-${roomId}`, ...over });
const view = (id: string, kind: GroupView['kind'], roomIds: string[], over: Partial<GroupView> = {}): GroupView => ({ id, homeId: 'h01', kind, key: `${kind}:x`, roomIds, openedAt: 0, ...over });

describe('grouping: fire by place', () => {
  it('a fire signal in the same or an adjoining room joins the open fire incident; elsewhere it opens one', () => {
    const open = [view('i1', 'fire', ['r101'])];
    expect(place(fire('r101'), open, adjacency)).toEqual({ join: 'i1' });
    expect(place(fire('f1-corridor'), open, adjacency)).toEqual({ join: 'i1' });
    expect(place(fire('r102'), open, adjacency)).toEqual({ join: 'i1' });
    // r103 does not adjoin r101: a separate fire, until the incident has spread next to it.
    expect(place(fire('r103'), open, adjacency)).toMatchObject({ open: { kind: 'fire' } });
    expect(place(fire('r103'), [view('i1', 'fire', ['r101', 'r102'])], adjacency)).toEqual({ join: 'i1' });
  });

  it('a fire spreading bedroom → corridor → next room stays one incident (the rooms grow with the points)', () => {
    let rooms = ['r101'];
    for (const room of ['f1-corridor', 'r105', 'kitchen']) {
      expect(place(fire(room), [view('i1', 'fire', rooms)], adjacency)).toEqual({ join: 'i1' });
      rooms = [...rooms, room];
    }
  });

  it('never joins another home, another kind, or a resolved incident (only open ones are offered)', () => {
    expect(place(fire('r101'), [view('i1', 'fire', ['r101'], { homeId: 'h02' })], adjacency)).toMatchObject({ open: {} });
    expect(place(fire('r101'), [view('i1', 'care', ['r101'])], adjacency)).toMatchObject({ open: {} });
  });

  it('with two candidate incidents the oldest wins', () => {
    const open = [view('new', 'fire', ['r102'], { openedAt: 20 }), view('old', 'fire', ['f1-corridor'], { openedAt: 10 })];
    expect(place(fire('r101'), open, adjacency)).toEqual({ join: 'old' });
  });

  it('adjacency is symmetric even when the registry lists it one way only', () => {
    const site = { homes: [{ id: 'hx', floors: [{ rooms: [{ id: 'a', adjacent: ['b'] }, { id: 'b', adjacent: [] }, { id: 'c', adjacent: [] }] }] }] };
    const adj = adjacencyOf({ site } as unknown as RegistryIndex);
    expect(adj('hx', 'b')).toEqual(['a']);
    expect(adj('hx', 'a')).toEqual(['b']);
    expect(adj('hx', 'c')).toEqual([]);
  });
});

describe('grouping: care, device, home', () => {
  it('care groups per resident, or per room without a resident', () => {
    expect(groupOf({ homeId: 'h01', category: 'care', rule: 'fall', residentId: 'h01-p01', roomId: 'r101' })).toMatchObject({ kind: 'care', key: 'care:h01:resident:h01-p01', residentId: 'h01-p01' });
    expect(groupOf({ homeId: 'h01', category: 'care', rule: 'x', roomId: 'r101' })).toMatchObject({ key: 'care:h01:room:r101' });
    const open = [view('i1', 'care', ['r101'], { key: 'care:h01:resident:h01-p01' })];
    expect(place({ homeId: 'h01', category: 'care', rule: 'bed_exit', residentId: 'h01-p01' }, open, adjacency)).toEqual({ join: 'i1' });
    expect(place({ homeId: 'h01', category: 'care', rule: 'bed_exit', residentId: 'h01-p02' }, open, adjacency)).toMatchObject({ open: { residentId: 'h01-p02' } });
  });

  it('device troubles group per device; a home communication loss is one home incident that takes in device offline alerts', () => {
    expect(groupOf({ homeId: 'h01', category: 'device', rule: 'low_battery', deviceId: 'd1' })).toMatchObject({ kind: 'device', key: 'device:h01:d1', deviceId: 'd1' });
    expect(groupOf({ homeId: 'h01', category: 'device', rule: 'home_comm_loss' })).toEqual({ kind: 'device', key: 'device:h01:home' });
    const open = [view('home', 'device', [], { key: 'device:h01:home' })];
    expect(place({ homeId: 'h01', category: 'device', rule: 'device_offline', deviceId: 'd1' }, open, adjacency)).toEqual({ join: 'home' });
    // A low battery is not explained by the home's network being down.
    expect(place({ homeId: 'h01', category: 'device', rule: 'low_battery', deviceId: 'd1' }, open, adjacency)).toMatchObject({ open: { key: 'device:h01:d1' } });
  });
});

describe('re-alerting (a subsequent alarm re-sounds an acknowledged panel)', () => {
  const alarm = { category: 'fire' as const, signal: 'alarm' as const, rule: 'smoke_alarm', severity: 'critical' as const };
  it('a new fire alarm point re-alerts an acknowledged incident; a pre-alarm, an inhibited point or an unacknowledged incident do not', () => {
    expect(reAlertOf({ severity: 'critical', acknowledgedAt: 1 }, alarm, true)).toBe('new_alarm_point');
    expect(reAlertOf({ severity: 'critical', acknowledgedAt: 1 }, alarm, false)).toBeUndefined();
    expect(reAlertOf({ severity: 'critical' }, alarm, true)).toBeUndefined();
    expect(reAlertOf({ severity: 'critical', acknowledgedAt: 1 }, { ...alarm, rule: 'smoke_prealarm', severity: 'medium' }, true)).toBeUndefined();
    expect(reAlertOf({ severity: 'critical', acknowledgedAt: 1 }, { ...alarm, inhibited: 'fire_in_room' }, true)).toBeUndefined();
  });
  it('a point outranking the incident re-alerts it, acknowledged or not', () => {
    const care = { category: 'care' as const, signal: 'care' as const, rule: 'bed_exit_long', severity: 'critical' as const };
    expect(reAlertOf({ severity: 'high', acknowledgedAt: 1 }, care, true)).toBe('higher_severity');
    expect(reAlertOf({ severity: 'high' }, care, false)).toBe('higher_severity');
    expect(reAlertOf({ severity: 'critical', acknowledgedAt: 1 }, care, true)).toBeUndefined();
  });
});
