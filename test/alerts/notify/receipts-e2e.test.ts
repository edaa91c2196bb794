import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { createMetricsRegistry } from '../../../common/metrics.ts';
import { createAlerts, type Alerts } from '../../../alerts/alerts.ts';
import { registerNotifyMetrics } from '../../../alerts/metrics.ts';
import { createWebhookChannel, SIGNATURE_HEADER, webhookSignature } from '../../../alerts/notify/adapters.ts';
import type { ChannelStats, Notification } from '../../../alerts/notify/channel.ts';
import { parseNotifyConfig, type NotifyConfig } from '../../../alerts/notify/config.ts';
import type { IncidentAuditEntry } from '../../../alerts/incidents/book.ts';
import { indexRegistry, type RegistryIndex } from '../../../contract/registry-index.ts';
import type { Roster } from '../../../contract/registry.ts';
import { testInflux } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { loginToken, tempDir, testAlertsConfig, until } from '../support/harness.ts';
import { fireSignal } from '../support/signals.ts';
import { testRules } from '../support/test-rules.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/**
 * Issue 15, audit gaps 6 and 9, end to end in a real alerts process (real InfluxDB, real HTTP): a
 * fire alarm reaches the nurse on duty by SMS and by a voice call through a gateway (a local HTTP
 * receiver answering as Aliyun does: 200 with `Code` and the message id); the gateway then posts
 * its signed delivery receipts to POST /api/notify/receipts/:channelId; each becomes one
 * `notify_receipt` entry in the incident's audit (delivered, not answered), once however often it
 * is posted; bad signatures, unknown ids, unknown channels and unreadable bodies are refused with
 * their codes; /metrics shows attempts, receipts, refusals and the queues.
 */

const SMS_SECRET = 'sms-receipt-secret-0123456789';
const VOICE_SECRET = 'voice-receipt-secret-0123456789';
const influx = testInflux('notify_receipts');
// 2026-01-01 01:00 UTC = 09:00 in Shanghai: the day shift (nurse-li) is on.
const clock = createManualClock(Date.UTC(2026, 0, 1, 1, 0));
let gateway: Receiver;
let a: Alerts;
let dir: Awaited<ReturnType<typeof tempDir>>;

const roster: Roster = {
  homeId: 'h01',
  timezone: 'Asia/Shanghai',
  people: [{ id: 'nurse-li', name: '李护士', role: 'nurse', phone: '13800000001' }],
  shifts: [{ id: 'day', name: '白班', days: [1, 2, 3, 4, 5, 6, 7], start: '08:00', end: '20:00', people: ['nurse-li'] }],
  directors: [],
};

function registry(): RegistryIndex {
  return indexRegistry({ ...demoRegistry().site, rosters: [roster] });
}

function notifyConfig(): NotifyConfig {
  return parseNotifyConfig({
    baseUrl: 'https://carewatch.example.cn',
    channels: [
      {
        id: 'sms',
        type: 'sms',
        url: `${gateway.url}/sms`,
        bodyTemplate: '{"PhoneNumbers":"{{to}}","Content":"{{text}}","OutId":"{{id}}"}',
        success: { pointer: '/Code', equals: ['OK'] },
        messageIdPointer: '/BizId',
        // Aliyun's SmsReport: [{ "biz_id", "success": true|false, "err_code": "DELIVERED", … }]
        receipts: { secret: SMS_SECRET, idPointer: '/biz_id', statusPointer: '/success', statuses: { true: 'delivered', false: 'failed' } },
      },
      {
        id: 'voice',
        type: 'sms',
        kind: 'voice',
        url: `${gateway.url}/call`,
        bodyTemplate: '{"CalledNumber":"{{to}}","TtsParam":"{{text}}"}',
        success: { pointer: '/Code', equals: ['OK'] },
        messageIdPointer: '/CallId',
        receipts: { secret: VOICE_SECRET, idPointer: '/call_id', statusPointer: '/status_code', statuses: { '200000': 'answered', '200005': 'not_answered', '200010': 'failed' } },
      },
    ],
    routes: [{ severities: ['critical'], level: 0, channels: ['sms', 'voice'] }],
  });
}

const receipts = (id: string): IncidentAuditEntry[] => (a.lifecycle.incidentAudit(id) ?? []).filter((e) => e.action === 'notify_receipt');

function post(channel: string, body: string, opts: { secret?: string; t?: number; token?: string; signature?: string } = {}) {
  const t = opts.t ?? Math.floor(clock.now() / 1000);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.signature !== undefined) headers[SIGNATURE_HEADER] = opts.signature;
  else if (opts.secret !== undefined) headers[SIGNATURE_HEADER] = webhookSignature(opts.secret, t, body);
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  return a.app.inject({ method: 'POST', url: `/api/notify/receipts/${channel}`, headers, payload: body });
}

/** One sample of a metric from the Prometheus text. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

beforeAll(async () => {
  gateway = await startReceiver();
  gateway.reply = (r) => (r.url === '/sms' ? { status: 200, body: '{"Code":"OK","Message":"OK","BizId":"biz-1"}' } : { status: 200, body: '{"Code":"OK","CallId":"call-1"}' });
  dir = await tempDir('notify-receipts-');
  a = createAlerts({
    config: testAlertsConfig({ influx, stateDir: dir.path }),
    registry: registry(),
    logger: pino({ level: process.env.ALERTS_TEST_LOG ?? 'silent' }),
    rules: testRules(),
    mqtt: false,
    clock,
    notify: notifyConfig(),
    notifyRandom: () => 1,
  });
  await a.start();
});
afterAll(async () => {
  await a.close();
  await gateway.close();
  await dir.remove();
});

describe('delivery receipts end to end', () => {
  it('maps receipts back to the incident audit, once each; refuses what it cannot trust; counts it all on /metrics', async () => {
    a.lifecycle.applySignals([fireSignal({ sourceTs: clock.now(), receivedTs: clock.now() })]);
    const incident = await until(() => a.lifecycle.openIncidents()[0], 'fire incident');
    await until(() => (a.lifecycle.incidentAudit(incident.id) ?? []).filter((e) => e.action === 'notified').length === 2, 'SMS and call delivered to the gateway');
    expect(gateway.requests.map((r) => r.url).sort()).toEqual(['/call', '/sms']);
    expect((JSON.parse(gateway.requests.find((r) => r.url === '/sms')!.body) as { Content: string }).Content).toContain('阳光颐养院');
    // The delivery's own audit entry names the gateway's message id, as its receipt will.
    expect((a.lifecycle.incidentAudit(incident.id) ?? []).filter((e) => e.action === 'notified').map((e) => [e.channel, e.reason]).sort()).toEqual([
      ['sms', 'gateway message biz-1'],
      ['voice', 'gateway message call-1'],
    ]);

    // The SMS reached the phone: Aliyun posts a batch.
    const smsReceipt = JSON.stringify([{ phone_number: '13800000001', success: true, err_code: 'DELIVERED', err_msg: '用户接收成功', biz_id: 'biz-1', out_id: `${incident.id}:0:sms:nurse-li` }]);
    const ok = await post('sms', smsReceipt, { secret: SMS_SECRET });
    expect([ok.statusCode, ok.json()]).toEqual([200, { results: [{ messageId: 'biz-1', outcome: 'recorded' }] }]);
    expect(receipts(incident.id).map((e) => [e.channel, e.recipient, e.status, e.escalationLevel, e.by])).toEqual([['sms', 'nurse-li', 'delivered', 0, 'system']]);
    expect(receipts(incident.id)[0]?.reason).toBe('gateway true, message biz-1');

    // The gateway posts it again (it retries until it sees a 2xx): answered 200, recorded once.
    const again = await post('sms', smsReceipt, { secret: SMS_SECRET });
    expect([again.statusCode, again.json()]).toEqual([200, { results: [{ messageId: 'biz-1', outcome: 'duplicate' }] }]);
    expect(receipts(incident.id)).toHaveLength(1);

    // The call rang out unanswered.
    const call = await post('voice', JSON.stringify({ call_id: 'call-1', status_code: '200005' }), { secret: VOICE_SECRET });
    expect(call.statusCode).toBe(200);
    expect(receipts(incident.id).map((e) => [e.channel, e.recipient, e.status])).toEqual([
      ['sms', 'nurse-li', 'delivered'],
      ['voice', 'nurse-li', 'not_answered'],
    ]);

    // Refused, each with its stable code.
    const refusals: Array<[string, Awaited<ReturnType<typeof post>>, number, string]> = [
      ['wrong secret', await post('sms', smsReceipt, { secret: 'another-secret-0123456789' }), 401, 'NOTIFY_RECEIPT_BAD_SIGNATURE'],
      ['no signature', await post('sms', smsReceipt), 401, 'NOTIFY_RECEIPT_BAD_SIGNATURE'],
      // A user's token is no substitute: the gateway is not a person.
      ['token only', await post('sms', smsReceipt, { token: await loginToken(a, 'admin') }), 401, 'NOTIFY_RECEIPT_BAD_SIGNATURE'],
      ['replayed 6 min later', await post('sms', smsReceipt, { secret: SMS_SECRET, t: Math.floor(clock.now() / 1000) - 360 }), 401, 'NOTIFY_RECEIPT_BAD_SIGNATURE'],
      ["the other channel's secret", await post('voice', JSON.stringify({ call_id: 'call-1', status_code: '200000' }), { secret: SMS_SECRET }), 401, 'NOTIFY_RECEIPT_BAD_SIGNATURE'],
      ['garbled signature', await post('sms', smsReceipt, { signature: 't=abc,v1=zz' }), 401, 'NOTIFY_RECEIPT_BAD_SIGNATURE'],
      ['unknown message id', await post('voice', JSON.stringify({ call_id: 'call-999', status_code: '200000' }), { secret: VOICE_SECRET }), 404, 'NOTIFY_RECEIPT_UNKNOWN_MESSAGE'],
      ['unknown channel', await post('nope', smsReceipt, { secret: SMS_SECRET }), 404, 'NOTIFY_RECEIPT_UNKNOWN_CHANNEL'],
      ['not JSON', await post('sms', 'biz-1 ok', { secret: SMS_SECRET }), 400, 'NOTIFY_RECEIPT_BAD_BODY'],
      ['unknown status word', await post('voice', JSON.stringify({ call_id: 'call-1', status_code: 'RINGING' }), { secret: VOICE_SECRET }), 400, 'NOTIFY_RECEIPT_BAD_BODY'],
      ['empty batch', await post('sms', '[]', { secret: SMS_SECRET }), 400, 'NOTIFY_RECEIPT_BAD_BODY'],
    ];
    for (const [what, res, status, code] of refusals) expect([what, res.statusCode, res.json().code]).toEqual([what, status, code]);
    expect(receipts(incident.id)).toHaveLength(2);

    // A batch: the good one is recorded, the unknown one reported beside it (the gateway need not resend the good one).
    const batch = await post('sms', JSON.stringify([{ biz_id: 'biz-1', success: false }, { biz_id: 'biz-404', success: true }]), { secret: SMS_SECRET });
    expect([batch.statusCode, batch.json()]).toEqual([
      200,
      {
        results: [
          { messageId: 'biz-1', outcome: 'recorded' },
          { messageId: 'biz-404', outcome: 'NOTIFY_RECEIPT_UNKNOWN_MESSAGE' },
        ],
      },
    ]);
    expect(receipts(incident.id).map((e) => e.status)).toEqual(['delivered', 'not_answered', 'failed']);

    // Described in the OpenAPI document.
    const doc = (await a.app.inject({ url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/notify/receipts/{channelId}'] ?? {})).toEqual(['post']);

    // Scraped from /metrics.
    const text = (await a.app.inject({ url: '/metrics' })).body;
    expect(sample(text, 'carewatch_notify_attempts_total', 'channel="sms",outcome="delivered"')).toBe(1);
    expect(sample(text, 'carewatch_notify_attempts_total', 'channel="voice",outcome="delivered"')).toBe(1);
    expect(sample(text, 'carewatch_notify_attempts_total', 'channel="sms",outcome="failed"')).toBe(0);
    expect(sample(text, 'carewatch_notify_receipts_total', 'channel="sms",status="delivered"')).toBe(1);
    expect(sample(text, 'carewatch_notify_receipts_total', 'channel="sms",status="failed"')).toBe(1);
    expect(sample(text, 'carewatch_notify_receipts_total', 'channel="voice",status="not_answered"')).toBe(1);
    expect(sample(text, 'carewatch_notify_receipts_rejected_total', 'code="NOTIFY_RECEIPT_BAD_SIGNATURE"')).toBe(6);
    expect(sample(text, 'carewatch_notify_receipts_rejected_total', 'code="NOTIFY_RECEIPT_UNKNOWN_MESSAGE"')).toBe(2);
    expect(sample(text, 'carewatch_notify_receipts_rejected_total', 'code="NOTIFY_RECEIPT_UNKNOWN_CHANNEL"')).toBe(1);
    expect(sample(text, 'carewatch_notify_receipts_rejected_total', 'code="NOTIFY_RECEIPT_BAD_BODY"')).toBe(3);
    expect(sample(text, 'carewatch_notify_queue_length', 'channel="sms"')).toBe(0);
    expect(sample(text, 'carewatch_notify_queue_oldest_wait_seconds', 'channel="voice"')).toBe(0);
  });
});

describe('queue metrics', () => {
  it('a channel held by its rate limit shows its queue length and oldest wait when scraped', async () => {
    const rx = await startReceiver();
    try {
      const q = createManualClock(Date.UTC(2026, 0, 1));
      const ch = createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: 'a-webhook-secret-of-some-length', clock: q, policy: { ratePerMin: 1, burst: 1 } });
      const registry = createMetricsRegistry();
      registerNotifyMetrics(registry, { channels: () => new Map<string, ChannelStats>([['hook', ch.stats!()]]), receipts: () => undefined });
      const msg = (id: string): Notification => ({ id, incidentId: 'i', homeId: 'h01', severity: 'low', level: 0, title: 't', text: 't', short: 't', link: 'l', recipients: [] });
      await ch.send(msg('a'));
      const waiting = [ch.send(msg('b')), ch.send(msg('c'))];
      q.advance(45_000);
      const text = await registry.metrics();
      // b waits for the token due at 60 s, c behind it; both have waited 45 s.
      expect(sample(text, 'carewatch_notify_queue_length', 'channel="hook"')).toBe(2);
      expect(sample(text, 'carewatch_notify_queue_oldest_wait_seconds', 'channel="hook"')).toBe(45);
      expect(sample(text, 'carewatch_notify_attempts_total', 'channel="hook",outcome="delivered"')).toBe(1);
      expect(sample(text, 'carewatch_notify_receipts_rejected_total', 'code="NOTIFY_RECEIPT_BAD_SIGNATURE"')).toBe(0);
      q.advance(15_000);
      await waiting[0];
      expect(sample(await registry.metrics(), 'carewatch_notify_queue_length', 'channel="hook"')).toBe(1);
      q.advance(60_000);
      await Promise.all(waiting);
      const after = await registry.metrics();
      expect(sample(after, 'carewatch_notify_queue_length', 'channel="hook"')).toBe(0);
      expect(sample(after, 'carewatch_notify_attempts_total', 'channel="hook",outcome="delivered"')).toBe(3);
    } finally {
      await rx.close();
    }
  });
});
