import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Clock } from '../../common/clock.ts';
import { SEVERITIES, type Severity } from '../../contract/payloads.ts';
import { BUREAU_LEVEL } from '../access.ts';
import { createDingTalkChannel, createSmsChannel, createWebhookChannel, createWeComChannel } from './adapters.ts';
import type { Notification, NotificationChannel } from './channel.ts';

/**
 * Notification routing as configuration (issue 15): the channels, and which severity goes to which
 * channel at which ladder level. One JSON file (CAREWATCH_NOTIFY_CONFIG, read by alerts/main.ts),
 * validated at start: a schema error or a route naming an unknown channel stops the process with
 * the offending key named, rather than an alarm silently reaching nobody.
 */

const ChannelId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
const HttpUrl = Type.String({ pattern: '^https?://\\S+$', maxLength: 2000 });
const Policy = Type.Object(
  {
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
    baseDelayMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 600_000 })),
    maxDelayMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 3_600_000 })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 120_000 })),
    ratePerMin: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 6000 })),
    burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);
const Common = { id: ChannelId, url: HttpUrl, policy: Type.Optional(Policy) };
const MsgType = Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('markdown')]));

const Scalar = Type.Union([Type.String({ maxLength: 200 }), Type.Number(), Type.Boolean()]);
/** RFC 6901 JSON Pointer (`/Code`, `/Response/SendStatusSet/0/SerialNo`). */
const Pointer = Type.String({ pattern: '^(/[^/]*)*$', maxLength: 500 });
export const RECEIPT_STATUSES = ['delivered', 'failed', 'answered', 'not_answered'] as const;
export type ReceiptStatus = (typeof RECEIPT_STATUSES)[number];
/** Issue 15: the statuses a receipt of each gateway kind may report (a call is answered or not; an SMS delivered or not). */
export const RECEIPT_STATUSES_OF: Readonly<Record<'sms' | 'voice', readonly ReceiptStatus[]>> = { sms: ['delivered', 'failed'], voice: ['answered', 'not_answered', 'failed'] };
const GatewaySuccess = Type.Object(
  {
    pointer: Pointer,
    equals: Type.Array(Scalar, { minItems: 1, maxItems: 20 }),
    permanent: Type.Optional(Type.Array(Scalar, { maxItems: 100 })),
  },
  { additionalProperties: false },
);
const GatewayReceipts = Type.Object(
  {
    /** Shared with the gateway: it signs each callback (X-Carewatch-Signature, as our webhook). */
    secret: Type.String({ minLength: 16 }),
    /** Where the receipt names the message id (the one `messageIdPointer` read from the send reply). */
    idPointer: Pointer,
    statusPointer: Pointer,
    /** The gateway's status words → ours, e.g. `{"DELIVRD":"delivered","UNDELIV":"failed"}`; unmapped words are refused. */
    statuses: Type.Record(Type.String({ minLength: 1, maxLength: 100 }), Type.Union(RECEIPT_STATUSES.map((r) => Type.Literal(r)))),
  },
  { additionalProperties: false },
);

export const ChannelConfig = Type.Union([
  Type.Object({ ...Common, type: Type.Literal('webhook'), secret: Type.String({ minLength: 16 }) }, { additionalProperties: false }),
  Type.Object({ ...Common, type: Type.Literal('wecom'), msgtype: MsgType }, { additionalProperties: false }),
  Type.Object({ ...Common, type: Type.Literal('dingtalk'), secret: Type.Optional(Type.String({ minLength: 1 })), msgtype: MsgType }, { additionalProperties: false }),
  Type.Object(
    {
      ...Common,
      type: Type.Literal('sms'),
      bodyTemplate: Type.String({ minLength: 1, maxLength: 10_000 }),
      contentType: Type.Optional(Type.String({ minLength: 1 })),
      headers: Type.Optional(Type.Record(Type.String(), Type.String())),
      /** Issue 15 (additive): a voice gateway calls and reads the short text; default sms. */
      kind: Type.Optional(Type.Union([Type.Literal('sms'), Type.Literal('voice')])),
      /** What a 2xx reply's body must say to count as sent (gateways answer 200 with a failure code). */
      success: Type.Optional(GatewaySuccess),
      /** JSON Pointer to the gateway's message id in its reply. */
      messageIdPointer: Type.Optional(Pointer),
      /** Delivery receipts posted back to POST /api/notify/receipts/<channel id>. */
      receipts: Type.Optional(GatewayReceipts),
    },
    { additionalProperties: false },
  ),
]);
export type ChannelConfig = Static<typeof ChannelConfig>;

export const RouteConfig = Type.Object(
  {
    severities: Type.Array(Type.Union(SEVERITIES.map((s) => Type.Literal(s))), { minItems: 1, uniqueItems: true }),
    /** 0 duty staff on the roster now, 1 the home's directors, 2 the bureau's contacts. */
    level: Type.Integer({ minimum: 0, maximum: BUREAU_LEVEL }),
    channels: Type.Array(ChannelId, { minItems: 1, uniqueItems: true }),
  },
  { additionalProperties: false },
);
export type RouteConfig = Static<typeof RouteConfig>;

export const NotifyConfig = Type.Object(
  {
    /** The page's address, for the link in each message (e.g. https://carewatch.example.cn). */
    baseUrl: HttpUrl,
    channels: Type.Array(ChannelConfig, { minItems: 1 }),
    routes: Type.Array(RouteConfig, { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type NotifyConfig = Static<typeof NotifyConfig>;

/** Schema errors (with their JSON path) and the cross-checks a schema cannot express. */
export function notifyConfigProblems(input: unknown): string[] {
  if (!Value.Check(NotifyConfig, input)) return [...Value.Errors(NotifyConfig, input)].slice(0, 10).map((e) => `notify config ${e.path || '/'}: ${e.message}`);
  const config = input;
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const c of config.channels) {
    if (ids.has(c.id)) problems.push(`notify config: channel ${c.id} is defined twice`);
    ids.add(c.id);
  }
  config.channels.forEach((c, i) => {
    if (c.type !== 'sms' || c.receipts === undefined) return;
    if (c.messageIdPointer === undefined) problems.push(`notify config /channels/${i}/receipts: needs messageIdPointer (receipts name the gateway's message id)`);
    const allowed = RECEIPT_STATUSES_OF[c.kind ?? 'sms'];
    for (const [word, status] of Object.entries(c.receipts.statuses)) {
      if (!allowed.includes(status)) problems.push(`notify config /channels/${i}/receipts/statuses/${word}: a ${c.kind ?? 'sms'} receipt is one of ${allowed.join(' | ')}, not "${status}"`);
    }
  });
  config.routes.forEach((r, i) => {
    for (const id of r.channels) if (!ids.has(id)) problems.push(`notify config /routes/${i}/channels: unknown channel ${id}`);
  });
  // Nothing lost: a critical alarm must reach the people on duty by some channel.
  if (!config.routes.some((r) => r.level === 0 && r.severities.includes('critical'))) problems.push('notify config /routes: no route sends critical alarms to the staff on duty (level 0)');
  return problems;
}

export function parseNotifyConfig(input: unknown): NotifyConfig {
  const problems = notifyConfigProblems(input);
  if (problems.length > 0) throw new Error(`invalid notify configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return input as NotifyConfig;
}

/** The channels a route addresses for a severity at a level. */
export function routedChannels(config: NotifyConfig, severity: Severity, level: number): string[] {
  const out: string[] = [];
  for (const r of config.routes) if (r.level === level && r.severities.includes(severity)) for (const c of r.channels) if (!out.includes(c)) out.push(c);
  return out;
}

/** Issue 15 (additive): what the channels tell their builder (the gateway's message ids, for receipts). */
export interface ChannelHooks {
  readonly onMessageId?: (channelId: string, msg: Notification, messageId: string) => void;
}

export function buildChannels(config: NotifyConfig, clock: Clock, random?: () => number, hooks: ChannelHooks = {}): Map<string, NotificationChannel> {
  const map = new Map<string, NotificationChannel>();
  for (const c of config.channels) {
    const common = { id: c.id, clock, ...(c.policy !== undefined ? { policy: c.policy } : {}), ...(random !== undefined ? { random } : {}) };
    let ch: NotificationChannel;
    switch (c.type) {
      case 'webhook':
        ch = createWebhookChannel({ ...common, url: c.url, secret: c.secret });
        break;
      case 'wecom':
        ch = createWeComChannel({ ...common, url: c.url, ...(c.msgtype !== undefined ? { msgtype: c.msgtype } : {}) });
        break;
      case 'dingtalk':
        ch = createDingTalkChannel({ ...common, url: c.url, ...(c.secret !== undefined ? { secret: c.secret } : {}), ...(c.msgtype !== undefined ? { msgtype: c.msgtype } : {}) });
        break;
      case 'sms':
        ch = createSmsChannel({
          ...common,
          url: c.url,
          bodyTemplate: c.bodyTemplate,
          ...(c.contentType !== undefined ? { contentType: c.contentType } : {}),
          ...(c.headers !== undefined ? { headers: c.headers } : {}),
          ...(c.kind !== undefined ? { kind: c.kind } : {}),
          ...(c.success !== undefined ? { success: c.success } : {}),
          ...(c.messageIdPointer !== undefined ? { messageIdPointer: c.messageIdPointer } : {}),
          ...(hooks.onMessageId !== undefined ? { onMessageId: (msg: Notification, id: string) => hooks.onMessageId?.(c.id, msg, id) } : {}),
        });
        break;
    }
    map.set(c.id, ch);
  }
  return map;
}
