import { Type, type Static } from '@sinclair/typebox';
import { ID_PATTERN } from './topics.ts';

/**
 * Payload schemas of protocol v1. Each schema is both the runtime validator (TypeBox compiles it)
 * and, through `Static`, the TypeScript type. docs/protocol.md describes them for device makers.
 */

/** Bound on a device message. The broker refuses larger publishes, ingest rejects them too. */
export const MAX_DEVICE_PAYLOAD_BYTES = 4096;
/** What the broker's receive stamp (`,"brokerTs":<ms>`) may add to a device message. */
export const BROKER_STAMP_MAX_BYTES = 32;

const Id = Type.String({ pattern: ID_PATTERN });
/** Milliseconds since the Unix epoch on the device's clock. */
const EpochMs = Type.Integer({ minimum: 0, maximum: 8.64e15 });
/** Per-device sequence number; restarts at 0 after a device reboot. */
const Seq = Type.Integer({ minimum: 0, maximum: 2 ** 53 - 1 });
/**
 * When the broker received the message (platform clock, ms), added by the broker to every device
 * message it forwards (GB 50440 / GB 26875 timing: device → broker → pushed). A device never sets
 * it: the broker appends its own as the last key, and JSON keeps the last of duplicate keys.
 */
const BrokerTs = Type.Optional(Type.Integer({ minimum: 0, maximum: 8.64e15 }));

export const TelemetryPayload = Type.Object(
  {
    ts: EpochMs,
    seq: Seq,
    brokerTs: BrokerTs,
    metrics: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Boolean()]), { minProperties: 1, maxProperties: 32 }),
  },
  { additionalProperties: false },
);
export type TelemetryPayload = Static<typeof TelemetryPayload>;

export const EVENT_TYPES = [
  'manual_call_point',
  'detector_alarm',
  'sos_button',
  'bed_exit',
  'bed_return',
  'fall',
  'tamper',
  'fault',
  'self_test',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const EventPayload = Type.Object(
  {
    ts: EpochMs,
    seq: Seq,
    brokerTs: BrokerTs,
    type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
    /** Free-form detail from the device, e.g. a fault code. */
    code: Type.Optional(Type.String({ maxLength: 64 })),
    detail: Type.Optional(Type.String({ maxLength: 256 })),
    /** `self_test` result, `fault` cleared, etc. */
    ok: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type EventPayload = Static<typeof EventPayload>;

export const StatusPayload = Type.Object(
  {
    ts: EpochMs,
    brokerTs: BrokerTs,
    online: Type.Boolean(),
    /** Set by the broker when it publishes on a device's behalf (connection lost without a will). */
    reason: Type.Optional(Type.String({ maxLength: 64 })),
    firmware: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: false },
);
export type StatusPayload = Static<typeof StatusPayload>;

export const ALERT_CATEGORIES = ['fire', 'care', 'device'] as const;
export type AlertCategory = (typeof ALERT_CATEGORIES)[number];

/** NFPA 72 keeps these signal classes apart; care is carewatch's own class for resident alerts. */
export const SIGNAL_CLASSES = ['alarm', 'supervisory', 'trouble', 'care'] as const;
export type SignalClass = (typeof SIGNAL_CLASSES)[number];

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const ALERT_STATES = ['raised', 'acknowledged', 'confirmed', 'escalated', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

export const CONFIRMATIONS = ['real_fire', 'false_alarm', 'test', 'fault'] as const;
export type Confirmation = (typeof CONFIRMATIONS)[number];

/** Why an alert is held back inside its incident (Alertmanager's inhibition; contract/incidents.ts). */
export const INHIBITION_REASONS = ['home_comm_loss', 'fire_in_room'] as const;
export type InhibitionReason = (typeof INHIBITION_REASONS)[number];

const Bilingual = Type.Object({ zh: Type.String(), en: Type.String() }, { additionalProperties: false });

/** One alert change, as published on `carewatch/v1/{homeId}/alerts` and the socket.io `alert` event. */
export const AlertMessage = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128 }),
    homeId: Id,
    deviceId: Type.Optional(Id),
    residentId: Type.Optional(Id),
    roomId: Type.Optional(Id),
    rule: Type.String({ minLength: 1, maxLength: 64 }),
    category: Type.Union(ALERT_CATEGORIES.map((c) => Type.Literal(c))),
    signal: Type.Union(SIGNAL_CLASSES.map((c) => Type.Literal(c))),
    severity: Type.Union(SEVERITIES.map((c) => Type.Literal(c))),
    state: Type.Union(ALERT_STATES.map((c) => Type.Literal(c))),
    /** When this change happened (platform clock, ms). */
    ts: EpochMs,
    /** Device timestamp of the reading or event that raised the alert. */
    sourceTs: EpochMs,
    /** When the broker received the message that raised the alert (its `brokerTs`; platform clock, ms). */
    brokerTs: Type.Optional(EpochMs),
    /** When the alerts process received the message that raised the alert (platform clock, ms). */
    receivedTs: Type.Optional(EpochMs),
    raisedAt: EpochMs,
    /** When the alert was first delivered to a connected client (socket.io), platform clock ms; GB 50440 10 s timing. */
    pushedAt: Type.Optional(EpochMs),
    /** Fire alarms: when first delivered to a non-empty bureau (monitoring-centre) room; GB 50440 / GB 26875 10 s timing. */
    bureauPushedAt: Type.Optional(EpochMs),
    message: Bilingual,
    /** Increases by one with every change of this alert, so clients can drop stale copies. */
    version: Type.Integer({ minimum: 1 }),
    value: Type.Optional(Type.Number()),
    acknowledgedBy: Type.Optional(Type.String()),
    acknowledgedAt: Type.Optional(EpochMs),
    confirmation: Type.Optional(Type.Union(CONFIRMATIONS.map((c) => Type.Literal(c)))),
    confirmedBy: Type.Optional(Type.String()),
    confirmedAt: Type.Optional(EpochMs),
    escalationLevel: Type.Optional(Type.Integer({ minimum: 0 })),
    resolvedAt: Type.Optional(EpochMs),
    resolvedBy: Type.Optional(Type.String()),
    comment: Type.Optional(Type.String({ maxLength: 1000 })),
    /** The incident this alert is a point of (contract/incidents.ts); every alert has one once raised. */
    incidentId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    /** Held back inside its incident: recorded and shown there, no notification or countdown of its own. */
    inhibited: Type.Optional(Type.Union(INHIBITION_REASONS.map((r) => Type.Literal(r)))),
  },
  { additionalProperties: false },
);
export type AlertMessage = Static<typeof AlertMessage>;
