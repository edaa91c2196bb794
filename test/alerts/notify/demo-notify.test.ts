import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { parseNotifyConfig, type NotifyConfig } from '../../../alerts/notify/config.ts';
import { onDuty } from '../../../alerts/notify/roster.ts';
import { deviceTopic } from '../../../contract/topics.ts';
import { createNotifySink, type NotifySink, type SinkMessage } from '../../../device-sim/notify-sink.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { startTestBroker, type TestBroker } from '../support/aedes.ts';
import { tempDir, testAlertsConfig, until } from '../support/harness.ts';
import { testRules } from '../support/test-rules.ts';

/**
 * Issue 15, audit gap 3: the demo as an operator runs it. The demo notify config
 * (config/notify-demo.json: WeCom and DingTalk robots, an SMS gateway, a signed webhook) pointed at
 * the demo receiver (device-sim/notify-sink.ts), the demo site's own rosters, a smoke alarm from a
 * real MQTT device through a real broker: the receiver gets the Chinese message for the right home,
 * @-mentioning the nurse on duty now by the demo roster, and her SMS. Then /health: a channel whose
 * every attempt fails (the receiver answers 500) is reported degraded, with its name and last error,
 * once it has failed for minutes — not at its first failure — and healthy again after a delivery.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const WEBHOOK_SECRET = 'demo-webhook-secret-0123456789';
const DINGTALK_SECRET = 'demo-SEC-dingtalk-0123456789';
// Tuesday 2026-01-06 03:00 in Asia/Shanghai (= Monday 19:00 UTC): the night shift (大夜班 B) is on.
const clock = createManualClock(Date.UTC(2026, 0, 5, 19, 0));
const influx = testInflux('demo_notify');
let broker: TestBroker;
let device: MqttClient;
let sink: NotifySink;
let dir: Awaited<ReturnType<typeof tempDir>>;
let alerts: Alerts;

/** The demo file, its receiver address replaced by this test's receiver (port 0). */
function demoConfig(): NotifyConfig {
  const text = readFileSync(`${ROOT}config/notify-demo.json`, 'utf8').replaceAll('http://127.0.0.1:8070', sink.url);
  return parseNotifyConfig(JSON.parse(text));
}

const smoke = (homeId: string, room: string, seq: number) =>
  device.publishAsync(deviceTopic(homeId, `${homeId}-sd-${room}`, 'telemetry'), JSON.stringify({ ts: clock.now(), seq, metrics: { smoke_obscuration_pct_per_m: 18 } }), { qos: 1 });

interface Health {
  status: string;
  problems: string[];
  notify?: { failingChannels: Array<{ channel: string; lastError: string; consecutiveFailures: number }> };
}
async function health(): Promise<{ code: number; body: Health }> {
  const res = await alerts.app.inject({ method: 'GET', url: '/health' });
  return { code: res.statusCode, body: res.json() as Health };
}

beforeAll(async () => {
  broker = await startTestBroker();
  device = await mqtt.connectAsync(broker.url, { username: 'publisher', password: 'pw', clientId: 'demo-notify-device', protocolVersion: 4 });
  sink = createNotifySink({
    config: { host: '127.0.0.1', port: 0, webhookSecret: WEBHOOK_SECRET, dingtalkSecret: DINGTALK_SECRET },
    registry: demoRegistry(),
    logger: pino({ level: 'silent' }),
    print: () => undefined,
    now: () => clock.now(),
  });
  await sink.start();
  dir = await tempDir('demo-notify-');
  alerts = createAlerts({
    config: testAlertsConfig({ influx, stateDir: dir.path, mqttUrl: broker.url }),
    registry: demoRegistry(),
    logger: pino({ level: process.env.ALERTS_TEST_LOG ?? 'silent' }),
    rules: testRules(),
    clock,
    notify: demoConfig(),
    notifyRandom: () => 1,
  });
  await alerts.start();
});
afterAll(async () => {
  await alerts.close();
  await device.endAsync();
  await broker.close();
  await sink.close();
  await dir.remove();
});

describe('the demo notify config and receiver', () => {
  it('a smoke alarm in 松鹤养老院 reaches the receiver in Chinese: the WeCom group @-mentions the night nurse on duty, and she gets an SMS', async () => {
    const roster = demoRegistry().site.rosters?.find((r) => r.homeId === 'h03');
    const nurses = onDuty(roster!, clock.now(), 'Asia/Shanghai');
    expect(nurses.map((n) => n.id)).toEqual(['h03-n7']);
    const nurse = nurses[0]!;

    await smoke('h03', 'r101', 1);
    const incident = await until(() => alerts.lifecycle.openIncidents().find((i) => i.homeId === 'h03'), 'fire incident in h03');
    const byKind = (kind: SinkMessage['kind']) => sink.messages().filter((m) => m.kind === kind);
    const [wecom] = await until(() => (byKind('wecom').length > 0 ? byKind('wecom') : undefined), 'WeCom message');
    const [sms] = await until(() => (byKind('sms').length > 0 ? byKind('sms') : undefined), 'SMS');
    expect(wecom!.to).toEqual([nurse.phone]);
    expect(wecom!.toNames[0]).toContain(nurse.name);
    // Chinese first: the home's name, the room, what happened, the severity; then the link to the incident.
    const first = wecom!.text.split('\n')[0]!;
    expect(first).toMatch(/^【紧急】松鹤养老院 101室/);
    expect(wecom!.text).toContain(`http://127.0.0.1:8080/`);
    expect(wecom!.text).toContain(incident.id);
    expect(sms!.to).toEqual([nurse.phone]);
    expect(sms!.text).toContain('松鹤养老院');
    // Only h03's people: nobody of another home was @-mentioned or texted.
    for (const m of sink.messages()) for (const name of m.toNames) expect(name).toContain('h03');
    // Nothing for the director or the bureau yet: the ladder has not climbed.
    expect(byKind('dingtalk')).toEqual([]);
    expect(byKind('webhook')).toEqual([]);

    // Unacknowledged for 15 s (NFPA 72 positive alarm sequence): director (DingTalk, signed) and bureau (signed webhook).
    clock.advance(15_000);
    const ding = await until(() => byKind('dingtalk')[0], 'DingTalk to the director');
    expect(ding.verified).toBe(true);
    expect(ding.toNames).toEqual([expect.stringContaining('院长')]);
    const hooks = await until(() => (byKind('webhook').length === 3 ? byKind('webhook') : undefined), 'webhook to the three bureau contacts');
    expect(hooks.every((h) => h.verified === true && h.homeId === 'h03' && h.incidentId === incident.id && h.level === 2)).toBe(true);
    expect(hooks.map((h) => h.to[0]).sort()).toEqual(['bureau-chen', 'bureau-duty', 'bureau-sun']);
    expect(hooks[0]!.text).toContain('松鹤养老院');
    expect((await health()).body.problems).not.toContain('ALERTS_NOTIFY_CHANNEL_FAILING');
  });

  it('/health is degraded, naming the channel and its last error, while a channel has failed its last attempts for minutes; healthy after a delivery', async () => {
    sink.failWith(500);
    const before = sink.messages().length;
    await smoke('h05', 'r101', 1);
    await until(() => alerts.lifecycle.openIncidents().find((i) => i.homeId === 'h05'), 'fire incident in h05');
    // The WeCom and SMS notifications are retried (2, 4, 8, 16 s back-off on the manual clock) and fail.
    const attempts = (channel: string) => (alerts.lifecycle.incidentAudit(alerts.lifecycle.openIncidents().find((i) => i.homeId === 'h05')!.id) ?? []).filter((e) => e.channel === channel && e.action === 'notify_failed');
    await until(() => attempts('duty-wecom-h05').length === 1, 'first failed attempt');
    for (const step of [2_000, 4_000, 8_000, 16_000]) {
      const n = attempts('duty-wecom-h05').length;
      clock.advance(step);
      await until(() => attempts('duty-wecom-h05').length > n, `attempt after ${step} ms`);
    }
    expect(attempts('duty-wecom-h05').map((e) => e.status)).toEqual(['retrying', 'retrying', 'retrying', 'retrying', 'failed']);
    // Failed five times in 30 s: not yet "for minutes" (one bad half-minute is not an outage).
    expect((await health()).body.problems).not.toContain('ALERTS_NOTIFY_CHANNEL_FAILING');
    clock.advance(3 * 60_000);
    const down = await health();
    expect(down.code).toBe(503);
    expect(down.body.status).toBe('degraded');
    expect(down.body.problems).toContain('ALERTS_NOTIFY_CHANNEL_FAILING');
    expect(down.body.notify?.failingChannels).toEqual(expect.arrayContaining([expect.objectContaining({ channel: 'duty-wecom-h05', lastError: 'HTTP 500', consecutiveFailures: 5 }), expect.objectContaining({ channel: 'sms' })]));
    const healthz = await alerts.app.inject({ method: 'GET', url: '/healthz' });
    expect(healthz.json()).toMatchObject({ status: 'unhealthy', problems: expect.arrayContaining(['ALERTS_NOTIFY_CHANNEL_FAILING']) });
    expect(sink.messages().length).toBe(before);
    // The page is still owed: its next round went out 1 min after it failed (before that change it
    // was never sent again). That attempt fails too, before the receiver is back (its retry waits on
    // the manual clock), so h05's robot has delivered nothing since.
    await until(() => attempts('duty-wecom-h05').length === 6, 'h05 paged again');

    // The receiver is back: the next alarm is delivered and the channel is healthy again.
    sink.failWith(undefined);
    await smoke('h07', 'r101', 1);
    await until(() => sink.messages().some((m) => m.kind === 'wecom' && m.text.includes('长青养老中心')), 'WeCom delivered again');
    // Health is per channel: the SMS gateway (shared by every home) delivered h07's message and is
    // healthy again; h05's own robot has delivered nothing since and is still reported.
    await until(async () => {
      const h = await health();
      return !h.body.notify?.failingChannels.some((c) => c.channel === 'sms');
    }, 'sms healthy');
    const after = (await health()).body.notify?.failingChannels.map((c) => c.channel);
    expect(after).toContain('duty-wecom-h05');
    expect(after).not.toContain('duty-wecom-h07');
  });
});
