import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { parseNotifyConfig } from '../../../alerts/notify/config.ts';
import { indexRegistry } from '../../../contract/registry-index.ts';
import type { Roster } from '../../../contract/registry.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoSubRegistry } from '../../support/registry.ts';
import { tempDir, testAlertsConfig, until } from '../support/harness.ts';
import { BUREAU_CONTACTS } from './fixtures.ts';
import { startReceiver, type Receiver } from './receiver.ts';

const SECRET = 'hunt-webhook-secret-0123456789';
// The night nurse on duty has no phone and no channel address (a roster PUT accepts that).
const ROSTER: Roster = {
  homeId: 'h01',
  timezone: 'Asia/Shanghai',
  people: [{ id: 'nurse-wang', name: '王护士', role: 'nurse' }],
  shifts: [{ id: 'all', name: '全天', days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '00:00', people: ['nurse-wang'] }],
  directors: [{ id: 'dir-zhang', name: '张院长', role: 'director', phone: '13900000001', addresses: { sms: 'zhang' } }],
};
const registry = indexRegistry({ ...demoSubRegistry(['h01']).site, rosters: [ROSTER], contacts: BUREAU_CONTACTS });
let hook: Receiver;
let a: Alerts | undefined;
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
beforeAll(async () => {
  hook = await startReceiver();
});
afterAll(async () => {
  await a?.close();
  await hook.close();
  for (const d of dirs) await d.remove();
});

/**
 * The only person on duty has no address on any routed channel (a roster may hold such a person): the
 * rung is treated as nobody on duty and the next one is paged at once. Until session 22 it counted as
 * staffed: `no_address` was audited and nothing went out until the ladder's deadline (a helper's hunt).
 */
describe('the only person on duty cannot be reached (no address on any routed channel)', () => {
  it('the next rung is paged at once, as for nobody on duty', async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
    const dir = await tempDir('hunt-noaddr-');
    dirs.push(dir);
    a = createAlerts({
      config: testAlertsConfig({ influx: testInflux('hunt_noaddr'), stateDir: dir.path }),
      registry,
      logger: pino({ level: 'silent' }),
      rules: [],
      mqtt: false,
      clock,
      notify: parseNotifyConfig({
        baseUrl: 'https://carewatch.example.cn',
        channels: [{ id: 'sms', type: 'webhook', url: `${hook.url}/sms`, secret: SECRET }],
        routes: [
          { severities: ['critical', 'high', 'medium', 'low'], level: 0, channels: ['sms'] },
          { severities: ['critical', 'high', 'medium', 'low'], level: 1, channels: ['sms'] },
        ],
      }),
      notifyRandom: () => 1,
    });
    await a.start();
    const now = clock.now();
    // Electrical fire monitoring over its limit in the plant room (supervisory, high).
    a.lifecycle.applySignals([{ key: 'elec:h01-ef-plant', rule: 'electrical_fire', category: 'fire', signal: 'supervisory', severity: 'high', homeId: 'h01', deviceId: 'h01-ef-plant', roomId: 'plant', active: true, sourceTs: now, message: { zh: '剩余电流超限', en: 'residual current over limit' } }]);
    const inc = a.lifecycle.openIncidents()[0];
    if (inc === undefined) throw new Error('no incident');
    const x = a;
    // The director (level 1, reachable by SMS) is paged at once, not at the ladder's 300 s.
    await until(() => {
      clock.advance(1_000);
      return hook.requests.some((r) => r.body.includes(inc.id)) || undefined;
    }, 'the director paged at once');
    expect(clock.now() - now).toBeLessThan(60_000);
    const audit = x.lifecycle.incidentAudit(inc.id) ?? [];
    expect(audit.some((e) => e.action === 'notify_failed' && e.status === 'no_address' && e.escalationLevel === 0)).toBe(true);
    expect(audit.some((e) => e.action === 'notified' && e.escalationLevel === 1)).toBe(true);
  });
});
