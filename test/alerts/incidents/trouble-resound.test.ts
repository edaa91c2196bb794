import { expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import type { Actor } from '../../../alerts/access.ts';
import { TROUBLE_RESOUND_S } from '../../../alerts/escalation.ts';
import type { IncidentChange } from '../../../alerts/incidents/book.ts';
import { createLifecycle } from '../../../alerts/lifecycle.ts';
import type { Signal } from '../../../alerts/rules/types.ts';
import { demoRegistry } from '../../support/registry.ts';
import { careSignal, fireSignal } from '../support/signals.ts';
import { wallClock } from '../support/wall-clock.ts';

/**
 * A silenced trouble sounds again within 24 h while its fault lasts (NFPA 72 §10.14.9.1). Until
 * session 23 an acknowledged trouble that never cleared was never reminded: a detector's fault
 * acknowledged one night stayed a quiet line on the page, for as long as nobody looked.
 */
const staff: Actor = { username: 'staff-h01', role: 'staff', homeId: 'h01' };
const HOUR = 3600_000;

function setup() {
  const clock = createManualClock();
  const changes: IncidentChange[] = [];
  let n = 0;
  let m = 0;
  const lc = createLifecycle({ clock, registry: demoRegistry(), onChange: () => undefined, onIncidentChange: (c) => changes.push(c), newId: () => `a${++n}`, newIncidentId: () => `i${++m}` });
  return { clock, lc, changes };
}

const trouble = (active: boolean): Signal =>
  fireSignal({ key: 'device_trouble:h01-sd-r101', rule: 'device_trouble', category: 'device', signal: 'trouble', severity: 'low', latching: false, active, message: { zh: '探测器故障', en: 'detector fault' } });

it('an acknowledged trouble that has not cleared is re-alerted a day after its acknowledgement, and again a day after the next', () => {
  const { clock, lc, changes } = setup();
  lc.applySignals([trouble(true)]);
  const id = lc.openIncidents()[0]?.id ?? '';
  expect(lc.ackIncident(id, staff)).toMatchObject({ ok: true });
  const ackedAt = clock.now();
  // Acknowledged and quiet for the rest of the day: no reminder, no escalation.
  clock.advance(TROUBLE_RESOUND_S * 1000 - 60_000);
  expect(lc.incident(id)).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'staff-h01', escalationLevel: 0 });
  expect(lc.incidentAudit(id)?.filter((e) => e.action === 'realerted' || e.action === 'reminder')).toEqual([]);
  const seen = changes.length;
  clock.advance(60_000);
  expect(clock.now()).toBe(ackedAt + TROUBLE_RESOUND_S * 1000);
  // Sounding again: the acknowledgement is gone, and the change is one a notifier pages on (a
  // `realerted` entry, then a new version of the incident).
  expect(lc.incident(id)).toMatchObject({ state: 'raised' });
  expect(lc.incident(id)?.acknowledgedAt).toBeUndefined();
  const after = changes.slice(seen);
  expect(after.map((c) => [c.audit.action, c.audit.reason, c.changed])).toEqual([
    ['realerted', 'trouble_resound', false],
    ['reminder', 'trouble_resound', true],
  ]);
  // Unacknowledged again: the ordinary reminders run (low: every 30 min).
  clock.advance(HOUR);
  expect(lc.incidentAudit(id)?.filter((e) => e.action === 'reminder' && e.reason === undefined).length).toBe(2);
  // Acknowledged again: the next resound is a day after that acknowledgement.
  expect(lc.ackIncident(id, staff)).toMatchObject({ ok: true });
  clock.advance(TROUBLE_RESOUND_S * 1000 - 1);
  expect(lc.incident(id)?.acknowledgedAt).toBeDefined();
  clock.advance(1);
  expect(lc.incident(id)?.acknowledgedAt).toBeUndefined();
  expect(lc.incidentAudit(id)?.filter((e) => e.action === 'realerted').length).toBe(2);
});

it('a trouble that clears resounds no more; an acknowledged alarm or care alert does not resound', () => {
  const { clock, lc } = setup();
  lc.applySignals([trouble(true), fireSignal(), careSignal()]);
  const ids = lc.openIncidents().map((i) => i.id);
  expect(ids.length).toBe(3);
  for (const id of ids) expect(lc.ackIncident(id, staff)).toMatchObject({ ok: true });
  lc.applySignals([trouble(false)]);
  clock.advance(3 * TROUBLE_RESOUND_S * 1000);
  for (const id of ids) expect(lc.incidentAudit(id)?.some((e) => e.action === 'realerted')).toBe(false);
});

it('a backward step of the wall clock leaves the acknowledgement time as it was, and the resound at most a day after it', () => {
  // The review's case (session 23): the first version of the step fix wrote the clamped time into
  // the incident (an acknowledgement time nobody acknowledged at, published with the next change).
  const clock = wallClock();
  const changes: IncidentChange[] = [];
  let n = 0;
  const lc = createLifecycle({ clock, registry: demoRegistry(), onChange: () => undefined, onIncidentChange: (c) => changes.push(c), newId: () => `a${++n}`, newIncidentId: () => `i${n}` });
  lc.applySignals([trouble(true)]);
  const id = lc.openIncidents()[0]?.id ?? '';
  expect(lc.ackIncident(id, staff)).toMatchObject({ ok: true });
  const ackedAt = lc.incident(id)?.acknowledgedAt;
  clock.advance(HOUR);
  clock.step(-2 * HOUR);
  // Another trouble of the same detector joins the incident after the step.
  lc.applySignals([fireSignal({ key: 'low_battery:h01-sd-r101', rule: 'low_battery', category: 'device', signal: 'trouble', severity: 'low', latching: false, message: { zh: '电池电量低', en: 'low battery' } })]);
  expect(lc.incident(id)?.points.length).toBe(2);
  expect(lc.incident(id)?.acknowledgedAt).toBe(ackedAt);
  // Within a day of real time from the acknowledgement it sounds again (here: 23 h after the step).
  clock.advance(TROUBLE_RESOUND_S * 1000 - HOUR);
  expect(lc.incident(id)?.acknowledgedAt).toBeUndefined();
  expect(lc.incidentAudit(id)?.filter((e) => e.action === 'realerted').map((e) => e.reason)).toEqual(['trouble_resound']);
});

it('a resound keeps the verdict: a trouble confirmed as a fault is still one, only unacknowledged', () => {
  const { clock, lc } = setup();
  lc.applySignals([trouble(true)]);
  const id = lc.openIncidents()[0]?.id ?? '';
  expect(lc.ackIncident(id, staff)).toMatchObject({ ok: true });
  expect(lc.confirmIncident(id, staff, 'fault', 'engineer booked')).toMatchObject({ ok: true });
  clock.advance(TROUBLE_RESOUND_S * 1000);
  expect(lc.incident(id)?.acknowledgedAt).toBeUndefined();
  expect(lc.incident(id)).toMatchObject({ confirmation: 'fault', confirmedBy: 'staff-h01' });
  expect(lc.ackIncident(id, staff)).toMatchObject({ ok: true, value: { confirmation: 'fault' } });
});
