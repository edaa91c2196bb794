import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../../../common/clock.ts';
import { createDingTalkChannel, createSmsChannel, createWebhookChannel, createWeComChannel, SIGNATURE_HEADER, verifyWebhookSignature } from '../../../alerts/notify/adapters.ts';
import type { AttemptRecord, DeliveryPolicy, NotificationChannel } from '../../../alerts/notify/channel.ts';
import { until } from '../support/harness.ts';
import { fallNotification } from './fixtures.ts';
import { startReceiver, type ReceivedRequest, type Receiver } from './receiver.ts';

/**
 * Issue 15, audit gap 7: the same matrix for each of the four adapters (signed webhook, WeCom
 * robot, DingTalk robot with 加签, SMS / voice gateway) against a real HTTP receiver on port 0:
 * retry with back-off after a 5xx and after a timeout, no further attempt once an acknowledgement
 * aborts (in back-off, in flight, or waiting for the rate limit), each request's signature and
 * format, and the Chinese-first text with home, room and bed, what happened and the link.
 * Delays run on the manual clock.
 */

const WEBHOOK_SECRET = 'a-webhook-secret-of-some-length';
const DING_SECRET = 'SECmatrix0123456789';
const OK_BODY = '{"errcode":0,"errmsg":"ok"}';
const LINK = 'https://cw.example.cn/?incident=inc-1';
let rx: Receiver;
let clock: ManualClock;

beforeAll(async () => {
  rx = await startReceiver();
});
afterAll(() => rx.close());
beforeEach(() => {
  rx.requests.length = 0;
  rx.reply = () => ({ status: 200, body: OK_BODY });
  clock = createManualClock(Date.UTC(2026, 0, 5, 19, 0));
});


const note = fallNotification;

interface Adapter {
  readonly name: string;
  make(policy: Partial<DeliveryPolicy>): NotificationChannel;
  /** Signature and format of one request as the real service (or an integrator) checks them; returns the text a person reads. */
  check(req: ReceivedRequest, at: number): string;
}

const ADAPTERS: readonly Adapter[] = [
  {
    name: 'signed webhook',
    make: (policy) => createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: WEBHOOK_SECRET, clock, random: () => 1, policy }),
    check(req, at) {
      expect(req.url).toBe('/hook');
      expect(req.headers['content-type']).toContain('application/json');
      const header = String(req.headers[SIGNATURE_HEADER]);
      expect(verifyWebhookSignature(WEBHOOK_SECRET, header, req.body, Math.floor(at / 1000))).toBe(true);
      expect(verifyWebhookSignature(WEBHOOK_SECRET, header, req.body.replace('跌倒', '正常'), Math.floor(at / 1000))).toBe(false);
      const body = JSON.parse(req.body) as { id: string; text: string; link: string; severity: string };
      expect(body).toMatchObject({ id: 'inc-1:0:x', severity: 'critical', link: LINK });
      // The webhook's receiver shows the text with the link field (its own JSON key).
      return `${body.text}\n${body.link}`;
    },
  },
  {
    name: 'WeCom robot',
    make: (policy) => createWeComChannel({ id: 'wecom', url: `${rx.url}/cgi-bin/webhook/send?key=k-1`, clock, random: () => 1, policy }),
    check(req) {
      expect(req.url).toBe('/cgi-bin/webhook/send?key=k-1');
      const body = JSON.parse(req.body) as { msgtype: string; text: { content: string; mentioned_mobile_list: string[] } };
      expect(body.msgtype).toBe('text');
      expect(body.text.mentioned_mobile_list).toEqual(['13800000001']);
      // WeCom's limit on a text message (群机器人配置说明): 2048 bytes.
      expect(Buffer.byteLength(body.text.content)).toBeLessThanOrEqual(2048);
      return body.text.content;
    },
  },
  {
    name: 'DingTalk robot (加签)',
    make: (policy) => createDingTalkChannel({ id: 'ding', url: `${rx.url}/robot/send?access_token=tok`, secret: DING_SECRET, clock, random: () => 1, policy }),
    check(req, at) {
      const url = new URL(req.url, rx.url);
      expect(url.searchParams.get('access_token')).toBe('tok');
      const ts = url.searchParams.get('timestamp');
      // Signed at the attempt's own time (DingTalk refuses a timestamp an hour off: errcode 310000).
      expect(ts).toBe(String(at));
      expect(url.searchParams.get('sign')).toBe(createHmac('sha256', DING_SECRET).update(`${ts}\n${DING_SECRET}`).digest('base64'));
      const body = JSON.parse(req.body) as { msgtype: string; text: { content: string }; at: { atMobiles: string[] } };
      expect(body.msgtype).toBe('text');
      expect(body.at.atMobiles).toEqual(['13800000001']);
      expect(body.text.content).toContain('@13800000001');
      return body.text.content;
    },
  },
  {
    name: 'SMS gateway',
    make: (policy) =>
      createSmsChannel({ id: 'sms', url: `${rx.url}/sms/send`, clock, random: () => 1, policy, bodyTemplate: '{"PhoneNumbers":"{{to}}","Content":"{{text}}","OutId":"{{id}}"}', headers: { authorization: 'Bearer gw-key' } }),
    check(req) {
      expect(req.url).toBe('/sms/send');
      expect(req.headers.authorization).toBe('Bearer gw-key');
      const body = JSON.parse(req.body) as { PhoneNumbers: string; Content: string; OutId: string };
      expect(body).toMatchObject({ PhoneNumbers: '+8613800000001', OutId: 'inc-1:0:x' });
      // Two concatenated UCS-2 segments at most (3GPP TS 23.038).
      expect([...body.Content].length).toBeLessThanOrEqual(134);
      return body.Content;
    },
  },
];

async function attempted(attempts: readonly AttemptRecord[], n: number): Promise<void> {
  await until(() => attempts.length >= n, `attempt ${n} reported`);
}

/** The same holds of every adapter's request (at the time it was sent). */
function checkAll(a: Adapter, times: readonly number[]): void {
  expect(rx.requests).toHaveLength(times.length);
  rx.requests.forEach((r, i) => {
    const text = a.check(r, times[i]!);
    // Chinese first: the Chinese line (home, room, bed, resident, what happened) before any English.
    expect(text).toContain('阳光颐养院');
    expect(text).toContain('101室 A床');
    expect(text).toContain('跌倒');
    // The link once: the demo showed it twice in robot messages when the text carried it too.
    expect(text.split(LINK)).toHaveLength(2);
    const en = text.indexOf('Fall detected');
    if (en >= 0) expect(text.indexOf('阳光颐养院')).toBeLessThan(en);
  });
}

describe.each(ADAPTERS)('$name', (a) => {
  it('retries after a 5xx and after a timeout, on the back-off, then delivers', async () => {
    rx.reply = (_r, i) => (i === 0 ? { status: 503 } : i === 1 ? 'hang' : { status: 200, body: OK_BODY });
    const ch = a.make({ baseDelayMs: 1000, timeoutMs: 5000 });
    const attempts: AttemptRecord[] = [];
    const times: number[] = [clock.now()];
    const receipt = ch.send(note(), { onAttempt: (x) => attempts.push(x) });
    await attempted(attempts, 1);
    expect(attempts[0]).toMatchObject({ status: 'retrying', httpStatus: 503 });
    clock.advance(999);
    expect(rx.requests).toHaveLength(1); // back-off 1 s (random 1: the full nominal delay)
    clock.advance(1);
    times.push(clock.now());
    await until(() => rx.requests.length === 2, 'second attempt');
    clock.advance(5000); // the receiver hangs: the attempt's timeout
    await attempted(attempts, 2);
    expect(attempts[1]).toMatchObject({ status: 'retrying', detail: 'timeout after 5000 ms' });
    clock.advance(1999);
    expect(rx.requests).toHaveLength(2); // doubled: 2 s
    clock.advance(1);
    times.push(clock.now());
    expect(await receipt).toMatchObject({ status: 'delivered', attempts: 3 });
    checkAll(a, times);
    expect(ch.stats?.().attempts).toEqual({ delivered: 1, retrying: 2, failed: 0, cancelled: 0 });
  });

  it('an acknowledgement during the back-off stops it: no further attempt', async () => {
    rx.reply = () => ({ status: 500 });
    const ch = a.make({ baseDelayMs: 1000 });
    const ac = new AbortController();
    const attempts: AttemptRecord[] = [];
    const receipt = ch.send(note(), { signal: ac.signal, onAttempt: (x) => attempts.push(x) });
    await attempted(attempts, 1);
    ac.abort('acknowledged by staff-h01');
    expect(await receipt).toMatchObject({ status: 'cancelled', attempts: 1 });
    clock.advance(3_600_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(rx.requests).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it('an acknowledgement while the request is in flight cancels it: no retry', async () => {
    rx.reply = () => 'hang';
    const ch = a.make({ baseDelayMs: 1000, timeoutMs: 5000 });
    const ac = new AbortController();
    const attempts: AttemptRecord[] = [];
    const receipt = ch.send(note(), { signal: ac.signal, onAttempt: (x) => attempts.push(x) });
    await until(() => rx.requests.length === 1, 'request in flight');
    ac.abort('acknowledged');
    expect(await receipt).toMatchObject({ status: 'cancelled', attempts: 1 });
    expect(attempts.map((x) => x.status)).toEqual(['cancelled']);
    clock.advance(3_600_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(rx.requests).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it('an acknowledgement while waiting for the rate limit removes it from the queue: never sent', async () => {
    const ch = a.make({ ratePerMin: 1, burst: 1 });
    expect(await ch.send(note({ id: 'first' }))).toMatchObject({ status: 'delivered' });
    const ac = new AbortController();
    const queued = ch.send(note({ id: 'second' }), { signal: ac.signal });
    expect(ch.stats?.().queued).toBe(1);
    clock.advance(30_000);
    expect(ch.stats?.().oldestWaitMs).toBe(30_000);
    ac.abort('acknowledged');
    expect(await queued).toMatchObject({ status: 'cancelled', attempts: 0 });
    expect(ch.stats?.()).toMatchObject({ queued: 0, oldestWaitMs: 0 });
    clock.advance(3_600_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(rx.requests).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it('gives up after maxAttempts of 5xx and reports the failure', async () => {
    rx.reply = () => ({ status: 502 });
    const ch = a.make({ baseDelayMs: 100, maxAttempts: 2 });
    const attempts: AttemptRecord[] = [];
    const receipt = ch.send(note(), { onAttempt: (x) => attempts.push(x) });
    await attempted(attempts, 1);
    clock.advance(100);
    expect(await receipt).toMatchObject({ status: 'failed', attempts: 2, httpStatus: 502 });
    expect(attempts.map((x) => x.status)).toEqual(['retrying', 'failed']);
  });
});

describe('rate-limit queue priority (audit gap 8)', () => {
  it('a fire notice is sent before a burst of 30 low-severity messages queued ahead of it', async () => {
    // The robots' limit: 20 a minute, burst 5 (one token every 3 s).
    const ch = createWeComChannel({ id: 'wecom', url: `${rx.url}/send?key=k`, clock, policy: { ratePerMin: 20, burst: 5 } });
    const low = Array.from({ length: 30 }, (_, i) => ch.send(note({ id: `low-${i}`, severity: 'low', title: `low-${i}` })));
    const fire = ch.send(note({ id: 'fire', severity: 'critical', title: 'FIRE' }));
    await Promise.all(low.slice(0, 5));
    expect(ch.stats?.().queued).toBe(26);
    // The next token, 3 s later, goes to the fire, not to low-5.
    clock.advance(3000);
    expect(await fire).toMatchObject({ status: 'delivered', attempts: 1 });
    const titles = rx.requests.map((r) => (JSON.parse(r.body) as { text: { content: string } }).text.content.split('\n')[0]);
    expect(titles).toEqual(['low-0', 'low-1', 'low-2', 'low-3', 'low-4', 'FIRE']);
    // The low ones still go, in their order, one per token: none is dropped.
    clock.advance(25 * 3000);
    await Promise.all(low);
    const order = rx.requests.map((r) => (JSON.parse(r.body) as { text: { content: string } }).text.content.split('\n')[0]);
    expect(order.slice(6)).toEqual(Array.from({ length: 25 }, (_, i) => `low-${i + 5}`));
    expect(ch.stats?.()).toMatchObject({ queued: 0, oldestWaitMs: 0 });
  });

  it('within one severity the queue is first come, first served; high goes before medium', async () => {
    const ch = createWebhookChannel({ id: 'hook', url: `${rx.url}/hook`, secret: WEBHOOK_SECRET, clock, policy: { ratePerMin: 60, burst: 1 } });
    const sent = [
      ch.send(note({ id: 'm1', severity: 'medium' })),
      ch.send(note({ id: 'm2', severity: 'medium' })),
      ch.send(note({ id: 'h1', severity: 'high' })),
      ch.send(note({ id: 'm3', severity: 'medium' })),
      ch.send(note({ id: 'h2', severity: 'high' })),
    ];
    await sent[0];
    for (let i = 0; i < 4; i++) clock.advance(1000);
    await Promise.all(sent);
    expect(rx.requests.map((r) => (JSON.parse(r.body) as { id: string }).id)).toEqual(['m1', 'h1', 'h2', 'm2', 'm3']);
  });
});
