import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../../common/clock.ts';
import { createSmsChannel, jsonPointer } from '../../../alerts/notify/adapters.ts';
import type { AttemptRecord, Notification } from '../../../alerts/notify/channel.ts';
import { notifyConfigProblems } from '../../../alerts/notify/config.ts';
import { until } from '../support/harness.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/**
 * Issue 15, audit gap 6: an SMS / voice gateway's HTTP 200 is not a delivery. Aliyun's SendSms
 * answers 200 `{"Code":"isv.BUSINESS_LIMIT_CONTROL",…}` when it refuses a message; Tencent Cloud
 * answers 200 with a per-number `SendStatusSet[].Code`. The configured success rule reads the body;
 * the configured pointer reads the gateway's message id (what its delivery receipts name).
 */

let rx: Receiver;
let clock: ManualClock;
beforeAll(async () => {
  rx = await startReceiver();
});
afterAll(() => rx.close());
beforeEach(() => {
  rx.requests.length = 0;
  clock = createManualClock(Date.UTC(2026, 0, 5, 19, 0));
});

const msg: Notification = {
  id: 'inc-1:0:sms:li',
  incidentId: 'inc-1',
  homeId: 'h01',
  severity: 'critical',
  level: 0,
  title: '【紧急】阳光颐养院 101室：烟雾报警',
  text: '阳光颐养院，101室：烟雾报警',
  short: '【紧急】阳光颐养院 101室：烟雾报警 https://cw.example.cn/?incident=inc-1',
  link: 'https://cw.example.cn/?incident=inc-1',
  recipients: [{ personId: 'li', name: '李护士', address: '13800000001' }],
};

const ALIYUN = { success: { pointer: '/Code', equals: ['OK'], permanent: ['isv.MOBILE_NUMBER_ILLEGAL', 'isv.SMS_TEMPLATE_ILLEGAL'] }, messageIdPointer: '/BizId' } as const;

function aliyun(policy = {}) {
  return createSmsChannel({ id: 'sms', url: `${rx.url}/sms`, clock, random: () => 1, bodyTemplate: '{"PhoneNumbers":"{{to}}","Content":"{{text}}"}', policy: { baseDelayMs: 1000, ...policy }, ...ALIYUN });
}

describe('gateway success rule', () => {
  it('a 200 whose body says BUSINESS_LIMIT_CONTROL is retried; the OK reply gives the message id', async () => {
    rx.reply = (_r, i) => (i === 0 ? { status: 200, body: '{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控"}' } : { status: 200, body: '{"Code":"OK","Message":"OK","BizId":"900619746936498440^0","RequestId":"F655A8D5"}' });
    const ch = aliyun();
    const attempts: AttemptRecord[] = [];
    const ids: string[] = [];
    const ch2 = createSmsChannel({ id: 'sms', url: `${rx.url}/sms`, clock, random: () => 1, bodyTemplate: '{}', policy: { baseDelayMs: 1000 }, ...ALIYUN, onMessageId: (_m, id) => ids.push(id) });
    const r = ch.send(msg, { onAttempt: (a) => attempts.push(a) });
    await until(() => attempts.length === 1, 'first attempt');
    expect(attempts[0]).toMatchObject({ status: 'retrying', httpStatus: 200, detail: 'gateway /Code = "isv.BUSINESS_LIMIT_CONTROL"' });
    clock.advance(1000);
    expect(await r).toMatchObject({ status: 'delivered', attempts: 2, messageId: '900619746936498440^0' });
    expect(attempts[1]).toMatchObject({ status: 'delivered', messageId: '900619746936498440^0' });
    // The hook that maps receipts back hears of the id the gateway gave.
    rx.reply = () => ({ status: 200, body: '{"Code":"OK","BizId":"b-2"}' });
    await ch2.send(msg);
    expect(ids).toEqual(['b-2']);
  });

  it('keeps failing: recorded as failed after maxAttempts; a permanent code fails at once', async () => {
    rx.reply = () => ({ status: 200, body: '{"Code":"isv.BUSINESS_LIMIT_CONTROL"}' });
    const ch = aliyun({ maxAttempts: 2 });
    const attempts: AttemptRecord[] = [];
    const r = ch.send(msg, { onAttempt: (a) => attempts.push(a) });
    await until(() => attempts.length === 1, 'first attempt');
    clock.advance(1000);
    expect(await r).toMatchObject({ status: 'failed', attempts: 2 });
    expect(ch.stats?.().attempts).toMatchObject({ delivered: 0, retrying: 1, failed: 1 });

    rx.reply = () => ({ status: 200, body: '{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"非法手机号"}' });
    expect(await ch.send(msg)).toMatchObject({ status: 'failed', attempts: 1, detail: 'gateway /Code = "isv.MOBILE_NUMBER_ILLEGAL"' });
    // A body that is not JSON cannot say OK: retried, not taken for a delivery.
    rx.reply = (_r, i) => (i === 3 ? { status: 200, body: '<html>busy</html>' } : { status: 200, body: '{"Code":"OK","BizId":"x"}' });
    const a2: AttemptRecord[] = [];
    const r2 = ch.send(msg, { onAttempt: (a) => a2.push(a) });
    await until(() => a2.length === 1, 'attempt');
    expect(a2[0]).toMatchObject({ status: 'retrying', detail: 'gateway reply is not JSON' });
    clock.advance(1000);
    expect(await r2).toMatchObject({ status: 'delivered', messageId: 'x' });
  });

  it('Tencent Cloud shape: pointer into SendStatusSet', async () => {
    const ch = createSmsChannel({
      id: 'sms',
      url: `${rx.url}/sms`,
      clock,
      bodyTemplate: '{"PhoneNumberSet":["{{to}}"]}',
      success: { pointer: '/Response/SendStatusSet/0/Code', equals: ['Ok'] },
      messageIdPointer: '/Response/SendStatusSet/0/SerialNo',
      policy: { maxAttempts: 1 },
    });
    rx.reply = () => ({ status: 200, body: '{"Response":{"SendStatusSet":[{"SerialNo":"5000:1045710669157053657849499619","PhoneNumber":"+8613800000001","Code":"Ok"}],"RequestId":"a0aabda6"}}' });
    expect(await ch.send(msg)).toMatchObject({ status: 'delivered', messageId: '5000:1045710669157053657849499619' });
    rx.reply = () => ({ status: 200, body: '{"Response":{"SendStatusSet":[{"SerialNo":"","Code":"LimitExceeded.PhoneNumberDailyLimit"}]}}' });
    expect(await ch.send(msg)).toMatchObject({ status: 'failed', detail: 'gateway /Response/SendStatusSet/0/Code = "LimitExceeded.PhoneNumberDailyLimit"' });
    rx.reply = () => ({ status: 200, body: '{"Response":{"Error":{"Code":"AuthFailure"}}}' });
    expect(await ch.send(msg)).toMatchObject({ status: 'failed', detail: 'gateway /Response/SendStatusSet/0/Code = missing' });
  });

  it('without a rule any 2xx counts (the old behaviour); a voice channel says it is one', async () => {
    rx.reply = () => ({ status: 200, body: '{"Code":"whatever"}' });
    const ch = createSmsChannel({ id: 'voice', url: `${rx.url}/call`, clock, bodyTemplate: '{"to":"{{to}}","tts":"{{text}}"}', kind: 'voice' });
    expect(ch.kind).toBe('voice');
    expect(await ch.send(msg)).toMatchObject({ status: 'delivered' });
    expect(createSmsChannel({ id: 's', url: rx.url, clock, bodyTemplate: '' }).kind).toBe('sms');
  });
});

describe('jsonPointer (RFC 6901)', () => {
  const doc = { a: { 'b/c': [10, { 'd~e': 'x' }] }, '': 1 };
  it('walks objects and arrays, unescapes ~1 and ~0, misses cleanly', () => {
    expect(jsonPointer(doc, '/a/b~1c/0')).toBe(10);
    expect(jsonPointer(doc, '/a/b~1c/1/d~0e')).toBe('x');
    expect(jsonPointer(doc, '/')).toBe(1);
    expect(jsonPointer(doc, '')).toBe(doc);
    expect(jsonPointer(doc, '/a/b~1c/2')).toBeUndefined();
    expect(jsonPointer(doc, '/a/b~1c/01')).toBeUndefined();
    expect(jsonPointer(doc, '/a/missing/x')).toBeUndefined();
    expect(jsonPointer(doc, 'a')).toBeUndefined();
    expect(jsonPointer({}, '/constructor')).toBeUndefined();
  });
});

describe('gateway configuration', () => {
  const base = {
    baseUrl: 'https://cw.example.cn',
    routes: [{ severities: ['critical'], level: 0, channels: ['voice'] }],
  };
  const voice = { id: 'voice', type: 'sms', kind: 'voice', url: 'https://gw.example.cn/call', bodyTemplate: '{}', success: { pointer: '/Code', equals: ['OK'] }, messageIdPointer: '/CallId' };
  it('accepts a voice gateway with receipts mapping to answered / not answered', () => {
    expect(notifyConfigProblems({ ...base, channels: [{ ...voice, receipts: { secret: 'receipt-secret-0123456789', idPointer: '/call_id', statusPointer: '/status_code', statuses: { '200000': 'answered', '200005': 'not_answered', '200010': 'failed' } } }] })).toEqual([]);
  });
  it('refuses receipts without a message id pointer, and a voice status on an SMS channel', () => {
    const { messageIdPointer: _m, ...noId } = voice;
    expect(notifyConfigProblems({ ...base, channels: [{ ...noId, receipts: { secret: 'receipt-secret-0123456789', idPointer: '/id', statusPointer: '/s', statuses: { A: 'answered' } } }] })).toEqual([
      'notify config /channels/0/receipts: needs messageIdPointer (receipts name the gateway\'s message id)',
    ]);
    expect(notifyConfigProblems({ ...base, channels: [{ ...voice, kind: 'sms', receipts: { secret: 'receipt-secret-0123456789', idPointer: '/id', statusPointer: '/s', statuses: { A: 'answered' } } }] })).toEqual([
      'notify config /channels/0/receipts/statuses/A: a sms receipt is one of delivered | failed, not "answered"',
    ]);
    expect(notifyConfigProblems({ ...base, channels: [{ ...voice, receipts: { secret: 'short', idPointer: '/id', statusPointer: '/s', statuses: {} } }] })[0]).toContain('/channels/0');
    expect(notifyConfigProblems({ ...base, channels: [{ ...voice, success: { pointer: 'Code', equals: ['OK'] } }] })[0]).toContain('/channels/0');
  });
});
