import { createHmac } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifySink, type NotifySink } from '../../device-sim/notify-sink.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * The demo notification receiver on its own: it answers as each service does, refuses a wrong or
 * stale signature like a real receiver must (so the demo shows signing works), names the recipients
 * from the demo rosters, and fails on request. Real HTTP on 127.0.0.1:0; time from a fixed clock.
 */

const NOW = Date.UTC(2026, 0, 5, 19, 0);
const WEBHOOK_SECRET = 'sink-test-webhook-secret';
const DING_SECRET = 'SEC-sink-test';
let sink: NotifySink;
const printed: string[] = [];

beforeAll(async () => {
  sink = createNotifySink({ config: { host: '127.0.0.1', port: 0, webhookSecret: WEBHOOK_SECRET, dingtalkSecret: DING_SECRET }, registry: demoRegistry(), logger: pino({ level: 'silent' }), print: (t) => printed.push(t), now: () => NOW });
  await sink.start();
});
afterAll(() => sink.close());

const post = (path: string, body: string, headers: Record<string, string> = {}) => fetch(`${sink.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
const sign = (t: number, body: string) => `t=${t},v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${body}`).digest('hex')}`;

describe('device-sim/notify-sink', () => {
  it('takes a signed webhook, refuses a wrong or stale signature (401), and prints whom it was for', async () => {
    const body = JSON.stringify({ id: 'i1:2:bureau-hook:bureau-duty', incidentId: 'i1', homeId: 'h01', level: 2, title: '【紧急】阳光颐养院', text: '阳光颐养院，101室：火警', link: 'http://x/#incident=i1', recipients: [{ personId: 'bureau-duty', name: '区民政局值班室', address: 'bureau-duty' }] });
    const t = Math.floor(NOW / 1000);
    expect((await post('/webhook/bureau', body, { 'x-carewatch-signature': sign(t, body) })).status).toBe(200);
    expect((await post('/webhook/bureau', body, { 'x-carewatch-signature': sign(t, `${body} `) })).status).toBe(401);
    expect((await post('/webhook/bureau', body, { 'x-carewatch-signature': sign(t - 301, body) })).status).toBe(401);
    expect(sink.messages()).toHaveLength(1);
    expect(sink.messages()[0]).toMatchObject({ kind: 'webhook', homeId: 'h01', level: 2, verified: true, to: ['bureau-duty'], toNames: ['区民政局值班室 (bureau 值班员 duty officer (24 h))'] });
    expect(printed.join('')).toContain('阳光颐养院，101室：火警');
  });

  it('answers WeCom and DingTalk in their own formats; a bad DingTalk 加签 gets errcode 310000', async () => {
    const wecom = await post('/wecom/cgi-bin/webhook/send?key=k', JSON.stringify({ msgtype: 'text', text: { content: '【紧急】松鹤养老院', mentioned_mobile_list: ['13800030007'] } }));
    expect(await wecom.json()).toEqual({ errcode: 0, errmsg: 'ok' });
    expect(sink.messages().at(-1)).toMatchObject({ kind: 'wecom', to: ['13800030007'], toNames: [expect.stringContaining('h03')] });
    const sig = encodeURIComponent(createHmac('sha256', DING_SECRET).update(`${NOW}\n${DING_SECRET}`).digest('base64'));
    const ding = (s: string) => post(`/dingtalk/robot/send?access_token=a&timestamp=${NOW}&sign=${s}`, JSON.stringify({ msgtype: 'text', text: { content: 'x' }, at: { atMobiles: ['13900010001'] } }));
    expect(await (await ding(sig)).json()).toEqual({ errcode: 0, errmsg: 'ok' });
    expect(await (await ding('AAAA')).json()).toMatchObject({ errcode: 310000 });
  });

  it('fails every post on request (PUT /control), and answers normally again', async () => {
    const put = (v: unknown) => fetch(`${sink.url}/control`, { method: 'PUT', body: JSON.stringify({ failWith: v }) });
    expect((await put(503)).status).toBe(200);
    const n = sink.messages().length;
    expect((await post('/sms/send', JSON.stringify({ to: '13800010001', content: 'x' }))).status).toBe(503);
    expect((await put('x')).status).toBe(400);
    await put(null);
    expect((await post('/sms/send', JSON.stringify({ to: '13800010001', content: 'x' }))).status).toBe(200);
    expect(sink.messages().length).toBe(n + 1);
  });
});
