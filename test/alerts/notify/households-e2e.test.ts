import { pino } from 'pino';
import { io as connectClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { parseNotifyConfig } from '../../../alerts/notify/config.ts';
import { defaultRules } from '../../../alerts/rules/index.ts';
import type { IncidentAuditEntry } from '../../../alerts/incidents/book.ts';
import type { IncidentMessage } from '../../../contract/incidents.ts';
import { indexRegistry, type RegistryIndex } from '../../../contract/registry-index.ts';
import type { Provider, SiteRegistry } from '../../../contract/registry.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../../contract/socket-events.ts';
import { createSimulator, type Simulator } from '../../../device-sim/simulator.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { startTestBroker, type TestBroker } from '../support/aedes.ts';
import { loginToken, tempDir, testAlertsConfig, until } from '../support/harness.ts';
import { careSignal } from '../support/signals.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/**
 * Issue 15 "elders who live at home", end to end: the demo site's households and providers, a real
 * broker, the real device simulator driving two households' devices (one of each provider), the
 * real alerts process with its real rules and InfluxDB, and webhook channels to local HTTP
 * receivers. The elder in hh01 presses the bedside call button: the provider's caregiver on duty
 * (not the off-shift one) and the family are notified, the other provider and the other
 * household's family receive nothing; a provider's user sees only its households over REST and
 * socket.io; the bureau sees the household in its overview and monthly statistics.
 */

const SECRET = 'households-webhook-secret-0123';
const influx = testInflux('households_e2e');
// 2026-01-01 01:00 UTC = Thursday 09:00 China Standard Time: the providers' day shift is on.
const clock = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
const SIM_HOMES = ['hh01', 'hh04'];
type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

let broker: TestBroker;
let sim: Simulator;
let alerts: Alerts;
let carer: Receiver;
let family: Receiver;
let mgmt: Receiver;
let dir: Awaited<ReturnType<typeof tempDir>>;
const clients: Client[] = [];

/**
 * The demo site with channel addresses: caregivers and managers on the provider's app, family
 * members by SMS (no `phone` fallback, so each person is reachable on their own channel only).
 */
function registry(): RegistryIndex {
  const site: SiteRegistry = structuredClone(demoRegistry().site);
  const app = (p: Provider['people'][number]) => {
    const { phone: _phone, ...rest } = p;
    return { ...rest, addresses: { 'carer-app': p.id, mgmt: p.id } };
  };
  for (const p of site.providers ?? []) {
    p.people = p.people.map(app);
    p.managers = p.managers.map(app);
  }
  for (const h of site.homes) {
    h.familyContacts = h.familyContacts?.map(({ phone: _phone, ...c }) => ({ ...c, addresses: { 'family-sms': c.id } }));
  }
  site.contacts = { bureau: [{ id: 'officer-chen', name: '陈科长', role: 'bureau officer', addresses: { mgmt: 'officer-chen' } }] };
  return indexRegistry(site);
}

const addressOf = (body: string): string | undefined => (JSON.parse(body) as { recipients: Array<{ address?: string }> }).recipients[0]?.address;
const addresses = (r: Receiver): string[] => r.requests.map((q) => addressOf(q.body) ?? '?').sort();
const notes = (id: string): IncidentAuditEntry[] => (alerts.lifecycle.incidentAudit(id) ?? []).filter((e) => e.action === 'notified');

async function connect(username: string): Promise<{ incidents: IncidentMessage[]; snapshot: IncidentMessage[] | undefined }> {
  const token = await loginToken(alerts, username);
  const socket: Client = connectClient(`http://127.0.0.1:${alerts.port}`, { auth: { token }, transports: ['websocket'], reconnection: false });
  clients.push(socket);
  const seen: { incidents: IncidentMessage[]; snapshot: IncidentMessage[] | undefined } = { incidents: [], snapshot: undefined };
  socket.on('incidents', (list) => (seen.snapshot = list));
  socket.on('incident', (i) => seen.incidents.push(i));
  await until(() => seen.snapshot !== undefined, `${username} snapshot`);
  return seen;
}

beforeAll(async () => {
  const reg = registry();
  const accounts: Record<string, string> = { 'svc-alerts': 'demo-svc-alerts' };
  for (const h of SIM_HOMES) for (const d of reg.devicesOfHome(h)) accounts[d.id] = `demo-${d.id}`;
  broker = await startTestBroker(accounts);
  carer = await startReceiver();
  family = await startReceiver();
  mgmt = await startReceiver();
  dir = await tempDir('households-');
  alerts = createAlerts({
    config: testAlertsConfig({ influx, stateDir: dir.path, mqttUrl: broker.url }),
    registry: reg,
    logger: pino({ level: process.env.ALERTS_TEST_LOG ?? 'silent' }),
    rules: defaultRules(),
    mqtt: true,
    clock,
    notify: parseNotifyConfig({
      baseUrl: 'https://carewatch.example.cn',
      channels: [
        { id: 'carer-app', type: 'webhook', url: `${carer.url}/carer`, secret: SECRET },
        { id: 'family-sms', type: 'webhook', url: `${family.url}/family`, secret: SECRET },
        { id: 'mgmt', type: 'webhook', url: `${mgmt.url}/mgmt`, secret: SECRET },
      ],
      routes: [
        { severities: ['critical', 'high'], level: 0, channels: ['carer-app', 'family-sms'] },
        { severities: ['critical'], level: 1, channels: ['mgmt'] },
        { severities: ['critical'], level: 2, channels: ['mgmt'] },
      ],
    }),
    notifyRandom: () => 1,
  });
  await alerts.start();
  // The simulator picks its devices from the registry: a household's like a care home's.
  sim = createSimulator({ config: { mqttUrl: broker.url, homes: SIM_HOMES, seed: 5 }, registry: reg, logger: pino({ level: 'silent' }), clock });
  await sim.start();
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await sim?.close();
  await alerts?.close();
  await broker?.close();
  await carer?.close();
  await family?.close();
  await mgmt?.close();
  await dir?.remove();
});

describe('households end to end', () => {
  it('a call from an elder at home reaches the provider caregiver on duty and the family, nobody else; the provider sees only its households; the bureau sees it', async () => {
    expect(sim.devices().map((d) => d.id).sort()).toEqual([...registry().devicesOfHome('hh01'), ...registry().devicesOfHome('hh04')].map((d) => d.id).sort());
    const pv01 = await connect('provider-pv01');
    const pv02 = await connect('provider-pv02');
    const staff = await connect('staff-h01');

    // The elder presses the bedside call button (呼叫器): sos_button over MQTT, the real SOS rule.
    sim.scenario.start('call', 'hh01-p01');
    const incident = await until(() => alerts.lifecycle.openIncidents().find((i) => i.homeId === 'hh01'), 'household incident');
    expect(incident).toMatchObject({ kind: 'care', severity: 'critical', residentId: 'hh01-p01' });

    // Level 0: the provider's day caregiver and both family members (critical is in both their
    // severities); an emergency call goes up at once, so the provider's manager (level 1) and the
    // bureau (level 2) too.
    await until(() => carer.requests.length === 1 && family.requests.length === 2 && mgmt.requests.length === 2, 'notifications');
    await until(() => notes(incident.id).length === 5, 'deliveries audited');
    expect(addresses(carer)).toEqual(['pv01-cg1']);
    expect(addresses(family)).toEqual(['hh01-fam1', 'hh01-fam2']);
    expect(addresses(mgmt)).toEqual(['officer-chen', 'pv01-manager']);
    const first = JSON.parse(carer.requests[0]!.body) as { level: number; homeId: string; text: string };
    expect(first).toMatchObject({ level: 0, homeId: 'hh01' });
    expect(first.text.split('\n')[0]).toContain('赵桂英家');
    const managerText = (JSON.parse(mgmt.requests.find((r) => addressOf(r.body) === 'pv01-manager')!.body) as { text: string }).text;
    expect(managerText).toContain("escalated to the provider's manager");
    expect(notes(incident.id).map((e) => [e.channel, e.recipient, e.escalationLevel]).sort()).toEqual([
      ['carer-app', 'pv01-cg1', 0],
      ['family-sms', 'hh01-fam1', 0],
      ['family-sms', 'hh01-fam2', 0],
      ['mgmt', 'officer-chen', 2],
      ['mgmt', 'pv01-manager', 1],
    ]);

    // socket.io: the provider of hh01 gets the incident live; the other provider and a care home's staff do not.
    await until(() => pv01.incidents.some((i) => i.id === incident.id), 'pv01 live incident');
    await new Promise((r) => setTimeout(r, 300));
    expect(pv02.incidents.filter((i) => i.homeId === 'hh01')).toEqual([]);
    expect(staff.incidents.filter((i) => i.homeId === 'hh01')).toEqual([]);
    const late02 = await connect('provider-pv02');
    expect(late02.snapshot?.some((i) => i.homeId === 'hh01')).toBe(false);
    expect((await connect('provider-pv01')).snapshot?.map((i) => i.id)).toContain(incident.id);

    // REST: the same boundary.
    const get = async (user: string, url: string) => alerts.app.inject({ url, headers: { authorization: `Bearer ${await loginToken(alerts, user)}` } });
    expect((await get('provider-pv01', `/api/incidents/${incident.id}`)).statusCode).toBe(200);
    expect((await get('provider-pv02', `/api/incidents/${incident.id}`)).statusCode).toBe(404);
    expect((await get('provider-pv02', '/api/incidents')).json()).toEqual([]);
    expect(((await get('provider-pv01', '/api/alerts')).json() as Array<{ homeId: string }>).map((a) => a.homeId)).toEqual(['hh01']);
    expect(((await get('provider-pv01', '/api/homes')).json() as Array<{ id: string }>).map((h) => h.id)).toEqual(['hh01', 'hh02', 'hh03']);
    expect(((await get('provider-pv02', '/api/homes')).json() as Array<{ id: string }>).map((h) => h.id)).toEqual(['hh04', 'hh05']);
    expect((await get('provider-pv02', '/api/homes/hh01/roster')).statusCode).toBe(404);
    // Its roster is the provider's: caregivers, shifts, the manager in the directors' place.
    expect((await get('provider-pv01', '/api/homes/hh01/roster')).json()).toMatchObject({ roster: { homeId: 'hh01', directors: [{ id: 'pv01-manager' }] } });
    expect((await get('provider-pv01', '/api/me')).json()).toMatchObject({ role: 'provider', providerId: 'pv01', homeIds: ['hh01', 'hh02', 'hh03'] });
    expect((await get('provider-pv02', '/api/stats?month=2026-01&home=hh01')).statusCode).toBe(404);

    // A provider's caregiver acknowledges for its household; the other provider cannot.
    const ack = async (user: string) => alerts.app.inject({ method: 'POST', url: `/api/incidents/${incident.id}/ack`, headers: { authorization: `Bearer ${await loginToken(alerts, user)}` } });
    expect((await ack('provider-pv02')).statusCode).toBe(404);
    expect((await ack('provider-pv01')).statusCode).toBe(200);

    // The family hears only of the severities each asked for: a `high` care alert in hh03 reaches
    // the contact with [critical, high], not the one with [critical].
    alerts.lifecycle.applySignals([careSignal({ key: 'spo2:hh03-p01', homeId: 'hh03', deviceId: 'hh03-vs-p01', roomId: 'bedroom', residentId: 'hh03-p01', sourceTs: clock.now(), receivedTs: clock.now() })]);
    await until(() => carer.requests.length === 2 && family.requests.length === 3, 'hh03 notifications');
    await new Promise((r) => setTimeout(r, 300));
    expect(addresses(carer)).toEqual(['pv01-cg1', 'pv01-cg1']);
    expect(addresses(family)).toEqual(['hh01-fam1', 'hh01-fam2', 'hh03-fam1']);
    // Nothing ever went to the other provider's people or the other households' families.
    const all = [...addresses(carer), ...addresses(family), ...addresses(mgmt)];
    expect(all.filter((a) => a.startsWith('pv02') || a.startsWith('hh04') || a === 'pv01-cg2')).toEqual([]);

    // The bureau: households listed apart from care homes, with their provider; monthly statistics include them.
    const homes = (await get('bureau', '/api/homes')).json() as Array<{ id: string; kind: string; provider?: { id: string; name: string } }>;
    expect(homes.filter((h) => h.kind === 'care-home')).toHaveLength(9);
    expect(homes.filter((h) => h.kind === 'household').map((h) => [h.id, h.provider?.id])).toEqual([
      ['hh01', 'pv01'], ['hh02', 'pv01'], ['hh03', 'pv01'], ['hh04', 'pv02'], ['hh05', 'pv02'],
    ]);
    await alerts.drained();
    const stats = (await get('bureau', '/api/stats?month=2026-01&kind=household')).json() as { homes: Array<{ homeId: string; kind: string; providerId: string; alerts: number; careEmergencies: { alerts: number } }> };
    expect(stats.homes.map((s) => s.homeId)).toEqual(['hh01', 'hh02', 'hh03', 'hh04', 'hh05']);
    expect(stats.homes.find((s) => s.homeId === 'hh01')).toMatchObject({ kind: 'household', providerId: 'pv01', alerts: 1, careEmergencies: { alerts: 1 } });
    expect(stats.homes.find((s) => s.homeId === 'hh04')).toMatchObject({ alerts: 0 });
    const csv = (await get('bureau', '/api/stats.csv?month=2026-01&kind=household')).body.split('\r\n');
    expect(csv[0]!.endsWith(',kind,provider')).toBe(true);
    expect(csv[1]!.startsWith('hh01,2026-01,1,')).toBe(true);
    expect(csv[1]!.endsWith(',household,pv01')).toBe(true);
    // A provider's own statistics: its households only.
    expect(((await get('provider-pv02', '/api/stats?month=2026-01')).json() as { homes: Array<{ homeId: string }> }).homes.map((s) => s.homeId)).toEqual(['hh04', 'hh05']);
  }, 90_000);
});
