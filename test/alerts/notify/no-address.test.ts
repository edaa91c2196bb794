import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { indexRegistry } from '../../../contract/registry-index.ts';
import type { Roster } from '../../../contract/registry.ts';
import { demoSubRegistry } from '../../support/registry.ts';
import { until } from '../support/harness.ts';
import { BUREAU_CONTACTS, startPagingAlerts, useReceiverAndRuns } from './fixtures.ts';

// The night nurse on duty has no phone and no channel address (a roster PUT accepts that).
const ROSTER: Roster = {
  homeId: 'h01',
  timezone: 'Asia/Shanghai',
  people: [{ id: 'nurse-wang', name: '王护士', role: 'nurse' }],
  shifts: [{ id: 'all', name: '全天', days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '00:00', people: ['nurse-wang'] }],
  directors: [{ id: 'dir-zhang', name: '张院长', role: 'director', phone: '13900000001', addresses: { sms: 'zhang' } }],
};
const registry = indexRegistry({ ...demoSubRegistry(['h01']).site, rosters: [ROSTER], contacts: BUREAU_CONTACTS });
const paging = useReceiverAndRuns();

/**
 * The only person on duty has no address on any routed channel (a roster may hold such a person): the
 * rung is treated as nobody on duty and the next one is paged at once. Until session 22 it counted as
 * staffed: `no_address` was audited and nothing went out until the ladder's deadline (a helper's hunt).
 */
describe('the only person on duty cannot be reached (no address on any routed channel)', () => {
  it('the next rung is paged at once, as for nobody on duty', async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const started = paging.track(await startPagingAlerts({ name: 'no_address', registry, rules: [], clock, channels: { sms: `${paging.receiver().url}/sms` }, levels: [[0, 'sms'], [1, 'sms']] }));
    const a = started.alerts;
    const now = clock.now();
    // Electrical fire monitoring over its limit in the plant room (supervisory, high).
    a.lifecycle.applySignals([{ key: 'elec:h01-ef-plant', rule: 'electrical_fire', category: 'fire', signal: 'supervisory', severity: 'high', homeId: 'h01', deviceId: 'h01-ef-plant', roomId: 'plant', active: true, sourceTs: now, message: { zh: '剩余电流超限', en: 'residual current over limit' } }]);
    const inc = a.lifecycle.openIncidents()[0];
    if (inc === undefined) throw new Error('no incident');
    // The director (level 1, reachable by SMS) is paged at once, not at the ladder's 300 s.
    await until(() => {
      clock.advance(1_000);
      return paging.receiver().requests.some((r) => r.body.includes(inc.id)) || undefined;
    }, 'the director paged at once');
    expect(clock.now() - now).toBeLessThan(60_000);
    // Audited once the receiver's answer is back (the request can be seen before).
    const audit = await until(() => {
      const entries = a.lifecycle.incidentAudit(inc.id) ?? [];
      return entries.some((e) => e.action === 'notified' && e.escalationLevel === 1) ? entries : undefined;
    }, "the director's page audited as delivered");
    expect(audit.some((e) => e.action === 'notify_failed' && e.status === 'no_address' && e.escalationLevel === 0)).toBe(true);
  });
});
