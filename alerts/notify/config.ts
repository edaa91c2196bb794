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
const ScopeId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
/**
 * Issue 15 (additive): who a channel or route is for. Absent on both = every home. A channel or route
 * with `homes` and/or `providers` carries only incidents of those homes, or of households those
 * providers serve: one home's group robot never receives another home's alarm (staff see only their
 * own home). Unscoped group robots are refused below levels 2 (notifyConfigProblems).
 */
const Scope = {
  homes: Type.Optional(Type.Array(ScopeId, { minItems: 1, maxItems: 1000, uniqueItems: true })),
  providers: Type.Optional(Type.Array(ScopeId, { minItems: 1, maxItems: 1000, uniqueItems: true })),
};
const Common = { id: ChannelId, url: HttpUrl, policy: Type.Optional(Policy), ...Scope };
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

/**
 * The floor of 30 s keeps a repeat slower than the NFPA 72 §23.8.1.3 15 s acknowledgement window
 * (a page repeated faster than a person can answer it is noise) and a chat robot within its
 * 20 messages a minute (channel.ts DEFAULT_DELIVERY).
 */
export const Repeat = Type.Object(
  {
    everyS: Type.Integer({ minimum: 30, maximum: 86_400 }),
    max: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
export type Repeat = Static<typeof Repeat>;

/**
 * Repeat period per severity when a route says nothing (issue 15 "keep trying until someone answers").
 * - critical 120 s: inside the NFPA 72 §23.8.1.3 positive alarm sequence's 180 s investigation
 *   window, so a missed first page is followed by a second while a look at the room still counts;
 *   longer than the delivery's own retries (2 s doubling, channel.ts) so a page is not stacked on
 *   its own retry; like a nurse call (VDE 0834-1) an unanswered critical call never goes quiet.
 * - high 5 min, medium 15 min: the ladder's own rungs (escalation.ts DEFAULT_POLICY: director after
 *   5 / 15 min) each get a repeat before the next rung is told.
 * - low (trouble) 4 h: NFPA 72 §10.14.9.1 re-sounds a silenced trouble signal every 24 h or less;
 *   4 h tells every 8–12 h shift at least twice without waking the home for a low battery.
 */
export const DEFAULT_REPEAT_S: Readonly<Record<Severity, number>> = { critical: 120, high: 300, medium: 900, low: 4 * 3600 };

export const RouteConfig = Type.Object(
  {
    severities: Type.Array(Type.Union(SEVERITIES.map((s) => Type.Literal(s))), { minItems: 1, uniqueItems: true }),
    /** 0 duty staff on the roster now, 1 the home's directors, 2 the bureau's contacts. */
    level: Type.Integer({ minimum: 0, maximum: BUREAU_LEVEL }),
    channels: Type.Array(ChannelId, { minItems: 1, uniqueItems: true }),
    /**
     * Issue 15 (additive): re-send to this level's people every `everyS` while the incident is
     * unacknowledged, at most `max` times (absent: until acknowledged). Absent = DEFAULT_REPEAT_S
     * for the severity; `false` = send once (a chat group that prefers only the escalations).
     */
    repeat: Type.Optional(Type.Union([Type.Literal(false), Repeat])),
    ...Scope,
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
  // Staff see only their own home (issue 15): a group robot posts into one chat group, with residents'
  // names, so below the bureau (which sees every home) it must say whose alarms it carries. Refused
  // rather than warned: a warning in a start log is read after the first alarm of the wrong home.
  const byId = new Map(config.channels.map((c) => [c.id, c]));
  config.routes.forEach((r, i) => {
    if (r.level >= BUREAU_LEVEL || scoped(r)) return;
    for (const id of r.channels) {
      const c = byId.get(id);
      if (c !== undefined && GROUP_TYPES.has(c.type) && !scoped(c)) {
        problems.push(`notify config /routes/${i}: group robot ${id} at level ${r.level} has no "homes" or "providers": it would post every home's alarms into one chat group; scope the channel or the route (unscoped group robots only at level ${BUREAU_LEVEL}, the bureau)`);
      }
    }
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

/** Chat-group robots: one message to a group, read by everyone in it. */
const GROUP_TYPES: ReadonlySet<ChannelConfig['type']> = new Set(['wecom', 'dingtalk']);

function scoped(s: { readonly homes?: readonly string[]; readonly providers?: readonly string[] }): boolean {
  return s.homes !== undefined || s.providers !== undefined;
}

/** Whose incident: the home, and for a household the provider serving it. */
export interface NotifyTarget {
  readonly homeId: string;
  readonly providerId?: string;
}

/** Whether a channel's or route's scope admits an incident of `target` (no scope: every home). */
export function inScope(s: { readonly homes?: readonly string[]; readonly providers?: readonly string[] }, target: NotifyTarget): boolean {
  if (!scoped(s)) return true;
  return (s.homes?.includes(target.homeId) ?? false) || (target.providerId !== undefined && (s.providers?.includes(target.providerId) ?? false));
}

/** One channel a level's routes address, with its repeat (the shortest any of those routes asks for). */
export interface RoutedChannel {
  readonly channel: string;
  readonly repeat?: Repeat;
}

/**
 * The channels the routes address for a severity at a level, for an incident of `target` (without
 * a target: every route and channel, as before scopes). A route or channel out of the target's
 * scope is left out.
 */
export function routesAt(config: NotifyConfig, severity: Severity, level: number, target?: NotifyTarget): RoutedChannel[] {
  const out = new Map<string, Repeat | undefined>();
  const scopes = new Map(config.channels.map((c) => [c.id, c]));
  for (const r of config.routes) {
    if (r.level !== level || !r.severities.includes(severity)) continue;
    if (target !== undefined && !inScope(r, target)) continue;
    const repeat: Repeat | undefined = r.repeat === false ? undefined : (r.repeat ?? { everyS: DEFAULT_REPEAT_S[severity] });
    for (const c of r.channels) {
      const ch = scopes.get(c);
      if (target !== undefined && ch !== undefined && !inScope(ch, target)) continue;
      const prior = out.get(c);
      if (!out.has(c) || (repeat !== undefined && (prior === undefined || repeat.everyS < prior.everyS))) out.set(c, repeat);
    }
  }
  return [...out].map(([channel, repeat]) => (repeat === undefined ? { channel } : { channel, repeat }));
}

/** The channels a route addresses for a severity at a level. */
export function routedChannels(config: NotifyConfig, severity: Severity, level: number, target?: NotifyTarget): string[] {
  return routesAt(config, severity, level, target).map((r) => r.channel);
}

/**
 * Homes whose critical alarms no level-0 channel carries once scopes apply (a scoped config that
 * forgot a home): logged by the notifier at start, one line per home.
 */
export function uncoveredHomes(config: NotifyConfig, homes: readonly NotifyTarget[]): string[] {
  return homes.filter((h) => routesAt(config, 'critical', 0, h).length === 0).map((h) => h.homeId);
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
