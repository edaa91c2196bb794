import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../../common/clock.ts';
import { createDingTalkChannel, createSmsChannel, createWebhookChannel, createWeComChannel, SIGNATURE_HEADER, verifyWebhookSignature } from '../../../alerts/notify/adapters.ts';
import type { AttemptRecord } from '../../../alerts/notify/channel.ts';
import { renderIncident, SMS_MAX_CHARS } from '../../../alerts/notify/message.ts';
import { demoRegistry } from '../../support/registry.ts';
import { until } from '../support/harness.ts';
import { FALL_INCIDENT, fallNotification } from './fixtures.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/**
 * Issue 15: each channel adapter against a real HTTP receiver (node:http on port 0). Back-off and
 * timeouts run on the manual clock: a retry is sent only when the clock reaches its delay.
 */

const SECRET = 'a-webhook-secret-of-some-length';
let rx: Receiver;
let clock: ManualClock;

beforeAll(async () => {
  rx = await startReceiver();
});
afterAll(() => rx.close());
beforeEach(() => {
  rx.requests.length = 0;
  rx.reply = () => ({ status: 200, body: '{"errcode":0,"errmsg":"ok"}' });
  clock = createManualClock(Date.UTC(2026, 0, 5, 19, 0));
});


const incident = FALL_INCIDENT;
const note = fallNotification;

/** Waits until the channel has armed its next clock timer (a rate-limit wait). */
async function armed(n = 1): Promise<void> {
  await until(() => clock.pending() >= n, 'a clock timer armed');
}

/**
 * Waits until attempt n has ended. The back-off timer is armed in the same tick as the attempt is
 * reported; waiting for the receiver's request alone would race the reply still on its way back.
 */
async function attempted(attempts: readonly AttemptRecord[], n: number): Promise<void> {
  await until(() => attempts.length >= n, `attempt ${n} reported`);
}

describe('message text', () => {
  it('is Chinese first, then English, with home, room, bed, resident, what happened, severity and a link', () => {
    const m = renderIncident(incident, demoRegistry(), 'https://cw.example.cn/', 1);
    const [zh, en, extra] = m.text.split('\n');
    expect(zh).toBe('阳光颐养院，101室 A床 王秀英：跌倒。级别：紧急（已升级至院长）');
    expect(en).toContain('Fall detected');
    expect(en).toContain('bed A, 王秀英');
    expect(extra).toBeUndefined(); // the link is placed once, by each adapter
    expect(m.link).toBe('https://cw.example.cn/?incident=inc-1');
    expect(m.short).toContain('阳光颐养院');
    expect(m.short).toContain('101室 A床');
    expect(m.short.endsWith(m.link)).toBe(true);
    expect([...m.short].length).toBeLessThanOrEqual(SMS_MAX_CHARS);
  });

  it('a home-wide incident (no room, no resident) names the home without an empty place', () => {
    const m = renderIncident({ ...incident, roomIds: [], residentId: undefined, message: { zh: '全院通信中断', en: 'Home communication lost' } }, demoRegistry(), 'https://cw.example.cn', 0);
    expect(m.title).toBe('【紧急】阳光颐养院：全院通信中断');
    expect(m.text.split('\n')[0]).toBe('阳光颐养院：全院通信中断。级别：紧急（值班）');
    expect(m.text).not.toMatch(/ ：|，：|, :/);
    expect(m.short).toBe(`【紧急】阳光颐养院：全院通信中断 ${m.link}`);
  });
});

describe('generic signed webhook', () => {
  it('retries after 500s with exponential back-off on the clock, each attempt signed', async () => {
    rx.reply = (_r, i) => (i < 2 ? { status: 500 } : { status: 204 });
    const ch = createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: SECRET, clock, random: () => 1, policy: { baseDelayMs: 1000 } });
    const attempts: AttemptRecord[] = [];
    const receipt = ch.send(note(), { onAttempt: (a) => attempts.push(a) });
    await attempted(attempts, 1);
    clock.advance(999);
    expect(rx.requests).toHaveLength(1); // the back-off (1 s) has not elapsed on the clock
    clock.advance(1);
    await attempted(attempts, 2);
    expect(rx.requests).toHaveLength(2);
    clock.advance(1999);
    expect(rx.requests).toHaveLength(2); // doubled: 2 s
    clock.advance(1);
    expect(await receipt).toMatchObject({ status: 'delivered', attempts: 3, httpStatus: 204 });
    expect(attempts.map((a) => [a.attempt, a.status, a.httpStatus])).toEqual([
      [1, 'retrying', 500],
      [2, 'retrying', 500],
      [3, 'delivered', 204],
    ]);
    for (const r of rx.requests) {
      const header = String(r.headers[SIGNATURE_HEADER]);
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifyWebhookSignature(SECRET, header, r.body, Math.floor(clock.now() / 1000))).toBe(true);
      expect(verifyWebhookSignature('another-secret-entirely', header, r.body, Math.floor(clock.now() / 1000))).toBe(false);
      expect(verifyWebhookSignature(SECRET, header, r.body.replace('李护士', '王护士'), Math.floor(clock.now() / 1000))).toBe(false);
      // Receiver-side check without our helper: HMAC-SHA256 over "<t>.<body>".
      const t = /t=(\d+)/.exec(header)?.[1];
      expect(header.endsWith(createHmac('sha256', SECRET).update(`${t}.${r.body}`).digest('hex'))).toBe(true);
    }
    const body = JSON.parse(rx.requests[0]!.body) as { text: string; link: string; recipients: Array<{ personId: string }> };
    expect(body.text).toContain('阳光颐养院');
    expect(body.link).toBe('https://cw.example.cn/?incident=inc-1');
    expect(body.recipients[0]?.personId).toBe('li');
  });

  it('times out a receiver that does not answer and retries', async () => {
    rx.reply = (_r, i) => (i === 0 ? 'hang' : { status: 200 });
    const ch = createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: SECRET, clock, random: () => 0, policy: { baseDelayMs: 1000, timeoutMs: 5000 } });
    const attempts: AttemptRecord[] = [];
    const receipt = ch.send(note(), { onAttempt: (a) => attempts.push(a) });
    await until(() => rx.requests.length === 1, 'first attempt');
    clock.advance(5000); // the attempt's timeout
    await attempted(attempts, 1);
    expect(attempts[0]).toMatchObject({ status: 'retrying', detail: 'timeout after 5000 ms' });
    clock.advance(500); // random 0: half the nominal 1 s
    expect(await receipt).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('does not read the body of a 2xx it does not need: an endless one is delivered, not held until the timeout', async () => {
    rx.reply = () => 'endless';
    const ch = createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: SECRET, clock, random: () => 0, policy: { timeoutMs: 5000 } });
    // The manual clock never reaches the timeout: only a body left unread lets this resolve.
    expect(await ch.send(note())).toMatchObject({ status: 'delivered', attempts: 1, httpStatus: 200 });
  });

  it('gives up at once on a 4xx and after maxAttempts on 5xx', async () => {
    rx.reply = () => ({ status: 401 });
    const ch = createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: SECRET, clock, policy: { maxAttempts: 2, baseDelayMs: 100 } });
    expect(await ch.send(note())).toMatchObject({ status: 'failed', attempts: 1, httpStatus: 401 });
    rx.reply = () => ({ status: 503 });
    const attempts: AttemptRecord[] = [];
    const r = ch.send(note(), { onAttempt: (a) => attempts.push(a) });
    await attempted(attempts, 1);
    clock.advance(100);
    expect(await r).toMatchObject({ status: 'failed', attempts: 2, httpStatus: 503 });
  });

  it('an abort cancels the pending retry: nothing more is sent', async () => {
    rx.reply = () => ({ status: 500 });
    const ch = createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: SECRET, clock, policy: { baseDelayMs: 1000 } });
    const ac = new AbortController();
    const attempts: AttemptRecord[] = [];
    const r = ch.send(note(), { signal: ac.signal, onAttempt: (a) => attempts.push(a) });
    await attempted(attempts, 1);
    ac.abort();
    expect(await r).toMatchObject({ status: 'cancelled', attempts: 1 });
    clock.advance(3_600_000);
    expect(rx.requests).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it('holds its rate limit: a burst of 2, then one per 30 s at 2 a minute', async () => {
    const ch = createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: SECRET, clock, policy: { ratePerMin: 2, burst: 2 } });
    const receipts = [1, 2, 3, 4].map((i) => ch.send(note({ id: `n${i}` })));
    await Promise.all(receipts.slice(0, 2));
    // One timer for the queue's next token; both waiting messages are in the queue.
    await armed(1);
    expect(ch.stats?.().queued).toBe(2);
    expect(rx.requests).toHaveLength(2);
    clock.advance(29_999);
    expect(rx.requests).toHaveLength(2);
    clock.advance(1);
    await receipts[2];
    expect(rx.requests).toHaveLength(3);
    clock.advance(30_000);
    await receipts[3];
    expect(rx.requests.map((r) => (JSON.parse(r.body) as { id: string }).id)).toEqual(['n1', 'n2', 'n3', 'n4']);
  });
});

describe('WeCom group robot', () => {
  it('posts the text format with @-mentions to the configured URL and treats errcode != 0 as failure', async () => {
    const ch = createWeComChannel({ id: 'wecom', url: `${rx.url}/cgi-bin/webhook/send?key=k-123`, clock, random: () => 1, policy: { baseDelayMs: 1000 } });
    expect(await ch.send(note())).toMatchObject({ status: 'delivered', errcode: 0 });
    const req = rx.requests[0]!;
    expect(req.url).toBe('/cgi-bin/webhook/send?key=k-123');
    const body = JSON.parse(req.body) as { msgtype: string; text: { content: string; mentioned_mobile_list: string[] } };
    expect(body.msgtype).toBe('text');
    expect(body.text.content.startsWith('【紧急】阳光颐养院 101室 A床 王秀英：跌倒')).toBe(true);
    expect(body.text.content).toContain('https://cw.example.cn/?incident=inc-1');
    expect(body.text.mentioned_mobile_list).toEqual(['13800000001']);

    // HTTP 200 with errcode 93000 (invalid webhook key): a failure, and not retried.
    rx.reply = () => ({ status: 200, body: '{"errcode":93000,"errmsg":"invalid webhook url"}' });
    expect(await ch.send(note())).toMatchObject({ status: 'failed', attempts: 1, httpStatus: 200, errcode: 93000 });
    // 45009 (frequency limit): retried after the back-off.
    rx.reply = (_r, i) => (i === 2 ? { status: 200, body: '{"errcode":45009,"errmsg":"api freq out of limit"}' } : { status: 200, body: '{"errcode":0,"errmsg":"ok"}' });
    const attempts: AttemptRecord[] = [];
    const r = ch.send(note(), { onAttempt: (a) => attempts.push(a) });
    await attempted(attempts, 1);
    expect(attempts[0]).toMatchObject({ status: 'retrying', errcode: 45009 });
    clock.advance(1000);
    expect(await r).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('reads a gateway\'s answer only up to its bound: an endless one is a retry, not gigabytes held until the timeout', async () => {
    rx.reply = (_r, i) => (i === 0 ? 'endless' : { status: 200, body: '{"errcode":0,"errmsg":"ok"}' });
    const ch = createWeComChannel({ id: 'wecom', url: `${rx.url}/cgi-bin/webhook/send?key=k-123`, clock, random: () => 0, policy: { baseDelayMs: 1000, timeoutMs: 5000 } });
    const attempts: AttemptRecord[] = [];
    const r = ch.send(note(), { onAttempt: (a) => attempts.push(a) });
    await attempted(attempts, 1);
    expect(attempts[0]).toMatchObject({ status: 'retrying', detail: 'answer over 65536 bytes' });
    clock.advance(500);
    expect(await r).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('markdown format', async () => {
    const ch = createWeComChannel({ id: 'wecom', url: `${rx.url}/send?key=k`, clock, msgtype: 'markdown' });
    await ch.send(note());
    const body = JSON.parse(rx.requests[0]!.body) as { msgtype: string; markdown: { content: string } };
    expect(body.msgtype).toBe('markdown');
    expect(body.markdown.content).toContain('阳光颐养院');
    expect(body.markdown.content).toContain('(https://cw.example.cn/?incident=inc-1)');
  });
});

describe('DingTalk robot', () => {
  it('signs the URL with timestamp+sign (HmacSHA256 of "<ts>\\n<secret>"), @-mentions, and fails on errcode', async () => {
    const secret = 'SECabc123';
    const ch = createDingTalkChannel({ id: 'ding', url: `${rx.url}/robot/send?access_token=tok`, secret, clock });
    expect(await ch.send(note())).toMatchObject({ status: 'delivered' });
    const url = new URL(rx.requests[0]!.url, rx.url);
    expect(url.searchParams.get('access_token')).toBe('tok');
    const ts = url.searchParams.get('timestamp');
    expect(ts).toBe(String(clock.now()));
    // The receiver's check, per DingTalk's documentation.
    expect(url.searchParams.get('sign')).toBe(createHmac('sha256', secret).update(`${ts}\n${secret}`).digest('base64'));
    const body = JSON.parse(rx.requests[0]!.body) as { msgtype: string; text: { content: string }; at: { atMobiles: string[] } };
    expect(body.msgtype).toBe('text');
    expect(body.text.content).toContain('阳光颐养院');
    expect(body.text.content).toContain('@13800000001');
    expect(body.at.atMobiles).toEqual(['13800000001']);

    rx.reply = () => ({ status: 200, body: '{"errcode":310000,"errmsg":"sign not match"}' });
    expect(await ch.send(note())).toMatchObject({ status: 'failed', attempts: 1, errcode: 310000 });
  });
});

describe('SMS / voice gateway', () => {
  it('fills the body template per recipient with the short text (JSON-escaped)', async () => {
    const ch = createSmsChannel({ id: 'sms', url: `${rx.url}/sms`, clock, bodyTemplate: '{"to":"{{to}}","content":"{{text}}","ref":"{{id}}"}', headers: { authorization: 'Bearer gw' } });
    expect(await ch.send(note())).toMatchObject({ status: 'delivered' });
    const req = rx.requests[0]!;
    expect(req.headers.authorization).toBe('Bearer gw');
    const body = JSON.parse(req.body) as { to: string; content: string; ref: string };
    expect(body.to).toBe('+8613800000001');
    expect(body.content).toBe(note().short);
    expect(body.content).toContain('阳光颐养院');
    expect(body.ref).toBe('inc-1:0:x');
  });

  it('form template: values URL-encoded', async () => {
    const ch = createSmsChannel({ id: 'sms', url: `${rx.url}/sms`, clock, bodyTemplate: 'to={{to}}&msg={{text}}', contentType: 'application/x-www-form-urlencoded' });
    await ch.send(note());
    const params = new URLSearchParams(rx.requests[0]!.body);
    expect(params.get('to')).toBe('+8613800000001');
    expect(params.get('msg')).toBe(note().short);
  });
});
