import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../common/clock.ts';
import { createHttpChannel, type DeliveryPolicy, type Notification, type NotificationChannel, type Verdict } from './channel.ts';

/**
 * The channel adapters (issue 15): how a notification becomes a request, and what a reply means.
 * Each is a thin layer over createHttpChannel (retries, back-off, rate limit, timeout).
 */

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' } as const;

/** The generic webhook's signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export const SIGNATURE_HEADER = 'x-carewatch-signature';

/**
 * Signs timestamp and body together (the scheme of Stripe's webhook signatures): a receiver checks
 * the MAC and rejects a timestamp too far from its own clock, so a captured request cannot be replayed later.
 */
export function webhookSignature(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** A receiver's check (used by the tests; documented for integrators). */
export function verifyWebhookSignature(secret: string, header: string, body: string, nowS: number, toleranceS = 300): boolean {
  const parts = new Map(header.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const));
  const t = Number(parts.get('t'));
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS) return false;
  const expected = Buffer.from(webhookSignature(secret, t, body));
  const given = Buffer.from(header);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export interface CommonChannelOptions {
  readonly id: string;
  readonly clock: Clock;
  readonly policy?: Partial<DeliveryPolicy>;
  readonly random?: () => number;
}

/** JSON POST of the whole notification, one per recipient, HMAC-signed. */
export function createWebhookChannel(opts: CommonChannelOptions & { readonly url: string; readonly secret: string }): NotificationChannel {
  return createHttpChannel({
    ...opts,
    audience: 'personal',
    request(msg, now) {
      const body = JSON.stringify({
        id: msg.id,
        incidentId: msg.incidentId,
        homeId: msg.homeId,
        severity: msg.severity,
        level: msg.level,
        title: msg.title,
        text: msg.text,
        link: msg.link,
        recipients: msg.recipients,
        sentAt: now,
      });
      return { url: opts.url, headers: { ...JSON_HEADERS, [SIGNATURE_HEADER]: webhookSignature(opts.secret, Math.floor(now / 1000), body) }, body };
    },
  });
}

/**
 * WeCom and DingTalk robots answer HTTP 200 with `{"errcode":0,"errmsg":"ok"}` on success and a
 * non-zero errcode on failure. Their "too fast" codes are worth a retry (WeCom 45009 "api freq out
 * of limit"; DingTalk 130101 "send too fast"); anything else (a wrong key 93000, a bad signature
 * 310000, a malformed body) will not heal by retrying.
 */
export function robotVerdict(retryable: readonly number[]) {
  return (body: string): Verdict => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return { kind: 'fail', detail: 'reply is not JSON' };
    }
    const errcode = typeof parsed === 'object' && parsed !== null && 'errcode' in parsed ? Number((parsed as { errcode: unknown }).errcode) : NaN;
    const errmsg = typeof parsed === 'object' && parsed !== null && 'errmsg' in parsed ? String((parsed as { errmsg: unknown }).errmsg).slice(0, 200) : '';
    if (errcode === 0) return { kind: 'ok', errcode: 0 };
    if (Number.isNaN(errcode)) return { kind: 'fail', detail: 'reply has no errcode' };
    return { kind: retryable.includes(errcode) ? 'retry' : 'fail', errcode, detail: errmsg };
  };
}

/** Cuts UTF-8 text to at most `maxBytes` bytes on a character boundary. */
export function clipBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}…`;
}

function mentionPhones(msg: Notification): string[] {
  return msg.recipients.flatMap((r) => (r.phone !== undefined ? [r.phone] : []));
}

/**
 * WeCom (企业微信) group robot: POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=… (the URL,
 * key included, is configuration). Body per 群机器人配置说明 (developer.work.weixin.qq.com/document/path/91770):
 * `{"msgtype":"text","text":{"content":…,"mentioned_mobile_list":[…]}}` (content ≤ 2048 bytes) or
 * `{"msgtype":"markdown","markdown":{"content":…}}` (≤ 4096 bytes; markdown cannot @-mention by phone,
 * so text is the default: the on-duty nurse's phone must ring).
 */
export function createWeComChannel(opts: CommonChannelOptions & { readonly url: string; readonly msgtype?: 'text' | 'markdown' }): NotificationChannel {
  const msgtype = opts.msgtype ?? 'text';
  return createHttpChannel({
    ...opts,
    audience: 'group',
    request(msg) {
      const body =
        msgtype === 'markdown'
          ? { msgtype, markdown: { content: clipBytes(`**${msg.title}**\n${msg.text}\n[打开 Open](${msg.link})`, 4096) } }
          : { msgtype, text: { content: clipBytes(`${msg.title}\n${msg.text}\n${msg.link}`, 2048), mentioned_mobile_list: mentionPhones(msg) } };
      return { url: opts.url, headers: JSON_HEADERS, body: JSON.stringify(body) };
    },
    classifyOk: robotVerdict([45009, -1]),
  });
}

/**
 * DingTalk (钉钉) custom robot: POST https://oapi.dingtalk.com/robot/send?access_token=… with
 * `{"msgtype":"text","text":{"content":…},"at":{"atMobiles":[…]}}` or
 * `{"msgtype":"markdown","markdown":{"title":…,"text":…},"at":{…}}` (自定义机器人发送群消息,
 * open.dingtalk.com/document/robots/custom-robot-access). With 加签 (a secret `SEC…`), each request
 * appends `&timestamp=<ms>&sign=<urlencode(base64(HmacSHA256(key=secret, "<timestamp>\n<secret>")))>`;
 * DingTalk refuses a timestamp more than an hour from its clock (errcode 310000).
 */
export function dingTalkSign(secret: string, timestampMs: number): string {
  return encodeURIComponent(createHmac('sha256', secret).update(`${timestampMs}\n${secret}`).digest('base64'));
}

export function createDingTalkChannel(opts: CommonChannelOptions & { readonly url: string; readonly secret?: string; readonly msgtype?: 'text' | 'markdown' }): NotificationChannel {
  const msgtype = opts.msgtype ?? 'text';
  return createHttpChannel({
    ...opts,
    audience: 'group',
    request(msg, now) {
      const phones = mentionPhones(msg);
      // DingTalk notifies an @-mentioned member only if the number also appears in the text.
      const mention = phones.map((p) => `@${p}`).join(' ');
      const at = { atMobiles: phones, isAtAll: false };
      const body =
        msgtype === 'markdown'
          ? { msgtype, markdown: { title: msg.title, text: `### ${msg.title}\n${msg.text}\n[打开 Open](${msg.link}) ${mention}`.trim() }, at }
          : { msgtype, text: { content: `${msg.title}\n${msg.text}\n${msg.link} ${mention}`.trim() }, at };
      const url = opts.secret === undefined ? opts.url : `${opts.url}${opts.url.includes('?') ? '&' : '?'}timestamp=${now}&sign=${dingTalkSign(opts.secret, now)}`;
      return { url, headers: JSON_HEADERS, body: JSON.stringify(body) };
    },
    classifyOk: robotVerdict([130101, -1]),
  });
}

/**
 * An SMS / voice gateway over HTTP: one request per recipient, body from a template. Placeholders
 * `{{to}}`, `{{text}}`, `{{title}}`, `{{link}}`, `{{incidentId}}`, `{{id}}`; inside a JSON content
 * type each value is JSON-string-escaped (without quotes, the template supplies them), otherwise
 * URL-encoded (form posts). `{{text}}` is the short text (one or two SMS segments).
 */
export function renderTemplate(template: string, values: Readonly<Record<string, string>>, contentType: string): string {
  const json = contentType.includes('json');
  return template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => {
    const v = values[name] ?? '';
    return json ? JSON.stringify(v).slice(1, -1) : encodeURIComponent(v);
  });
}

/**
 * A JSON Pointer (RFC 6901) lookup: `/Response/SendStatusSet/0/Code`; `~1` is `/`, `~0` is `~`.
 * Undefined when a step is missing. The empty pointer is the whole document.
 */
export function jsonPointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  if (!pointer.startsWith('/')) return undefined;
  let cur: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(key)) return undefined;
      cur = cur[Number(key)];
    } else if (typeof cur === 'object' && cur !== null && Object.hasOwn(cur, key)) {
      cur = (cur as Record<string, unknown>)[key];
    } else return undefined;
  }
  return cur;
}

export type GatewayScalar = string | number | boolean;

/**
 * What a gateway's 2xx reply body means. Chinese SMS gateways answer HTTP 200 whatever happened and
 * say it in the body: Aliyun `{"Code":"OK","BizId":"…"}` or `{"Code":"isv.BUSINESS_LIMIT_CONTROL",…}`
 * (dysmsapi SendSms), Tencent Cloud `{"Response":{"SendStatusSet":[{"Code":"Ok","SerialNo":"…"}]}}`.
 * The value at `pointer` must be one of `equals`; otherwise the attempt is retried (a flow-control
 * or transient code heals; the retries are bounded by maxAttempts) unless the value is listed in
 * `permanent` (an illegal number, a bad template: retrying cannot help), which fails at once.
 */
export interface GatewaySuccessRule {
  readonly pointer: string;
  readonly equals: readonly GatewayScalar[];
  readonly permanent?: readonly GatewayScalar[];
}

export function gatewayVerdict(rule: GatewaySuccessRule | undefined, messageIdPointer: string | undefined) {
  return (body: string): Verdict => {
    let parsed: unknown;
    if (rule !== undefined || messageIdPointer !== undefined) {
      try {
        parsed = JSON.parse(body);
      } catch {
        // A success rule needs a JSON body; without one only the message id is missing.
        if (rule !== undefined) return { kind: 'retry', detail: 'gateway reply is not JSON' };
        return { kind: 'ok' };
      }
    }
    const idValue = messageIdPointer === undefined ? undefined : jsonPointer(parsed, messageIdPointer);
    const messageId = typeof idValue === 'string' || typeof idValue === 'number' ? String(idValue).slice(0, 200) : undefined;
    if (rule !== undefined) {
      const v = jsonPointer(parsed, rule.pointer);
      const scalar = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
      if (scalar === undefined || !rule.equals.includes(scalar)) {
        const detail = `gateway ${rule.pointer} = ${scalar === undefined ? 'missing' : JSON.stringify(scalar)}`.slice(0, 200);
        const permanent = scalar !== undefined && (rule.permanent ?? []).includes(scalar);
        return { kind: permanent ? 'fail' : 'retry', detail, ...(messageId !== undefined ? { messageId } : {}) };
      }
    }
    // The id in the detail too: the `notified` audit entry then names what the receipt will name.
    return { kind: 'ok', ...(messageId !== undefined ? { messageId, detail: `gateway message ${messageId}` } : {}) };
  };
}

export interface SmsChannelOptions extends CommonChannelOptions {
  readonly url: string;
  readonly bodyTemplate: string;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** `voice`: the gateway places a call reading the short text; its receipts say answered / not answered. */
  readonly kind?: 'sms' | 'voice';
  readonly success?: GatewaySuccessRule;
  /** JSON Pointer to the gateway's message id in its reply (what its delivery receipts name). */
  readonly messageIdPointer?: string;
  /** Told of each message id the gateway gave (alerts/notify/receipt-routes.ts maps receipts back). */
  readonly onMessageId?: (msg: Notification, messageId: string) => void;
}

export function createSmsChannel(opts: SmsChannelOptions): NotificationChannel & { readonly kind: 'sms' | 'voice' } {
  const contentType = opts.contentType ?? 'application/json; charset=utf-8';
  const channel = createHttpChannel({
    ...opts,
    audience: 'personal',
    request(msg) {
      const to = msg.recipients[0]?.address ?? msg.recipients[0]?.phone ?? '';
      const body = renderTemplate(opts.bodyTemplate, { to, text: msg.short, title: msg.title, link: msg.link, incidentId: msg.incidentId, id: msg.id }, contentType);
      return { url: opts.url, headers: { ...opts.headers, 'content-type': contentType }, body };
    },
    classifyOk: gatewayVerdict(opts.success, opts.messageIdPointer),
  });
  const { onMessageId } = opts;
  const kind = opts.kind ?? 'sms';
  if (onMessageId === undefined) return { ...channel, kind };
  return {
    ...channel,
    kind,
    async send(msg, sendOpts = {}) {
      return channel.send(msg, {
        ...sendOpts,
        onAttempt: (a) => {
          // Known before the audit entry of the attempt is written: a receipt racing it still maps.
          if (a.status === 'delivered' && a.messageId !== undefined) onMessageId(msg, a.messageId);
          sendOpts.onAttempt?.(a);
        },
      });
    },
  };
}
