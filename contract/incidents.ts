import { Type, type Static } from '@sinclair/typebox';
import { ALERT_STATES, CONFIRMATIONS, INHIBITION_REASONS, SEVERITIES, SIGNAL_CLASSES } from './payloads.ts';
import { ID_PATTERN } from './topics.ts';

/**
 * Incidents and disablements, protocol v1 (issue 11). An incident groups the alerts of one home that
 * belong to one event, as a fire-alarm control panel shows one fire with its first alarm point and
 * the points that joined it:
 * - a **fire** incident opens with the first fire alarm point of a home and takes in every fire signal
 *   in the same or adjoining rooms while it is open;
 * - a **care** incident per resident takes in that resident's signals;
 * - a **device** incident per device (trouble, offline), or per home for a communication loss, which
 *   takes in the per-device offline alerts it explains (inhibited).
 * The incident carries one acknowledgement, one confirmation, one countdown and one escalation; its
 * member alerts stay individually visible and queryable (`AlertMessage.incidentId`).
 *
 * A disablement (GB 4717 屏蔽 state; a panel's test mode) takes a device, a room or a whole home out of
 * fire alarming for a bounded time: its signals are recorded, they raise no fire alarm.
 */

const Id = Type.String({ pattern: ID_PATTERN });
const EpochMs = Type.Integer({ minimum: 0, maximum: 8.64e15 });
const Bilingual = Type.Object({ zh: Type.String(), en: Type.String() }, { additionalProperties: false });

export const INCIDENT_KINDS = ['fire', 'care', 'device'] as const;
export type IncidentKind = (typeof INCIDENT_KINDS)[number];

export { INHIBITION_REASONS, type InhibitionReason } from './payloads.ts';

/** One point of an incident, in the order the points joined; the first is the first alarm point. */
export const IncidentPoint = Type.Object(
  {
    alertId: Type.String({ minLength: 1, maxLength: 128 }),
    rule: Type.String({ minLength: 1, maxLength: 64 }),
    signal: Type.Union(SIGNAL_CLASSES.map((c) => Type.Literal(c))),
    severity: Type.Union(SEVERITIES.map((c) => Type.Literal(c))),
    /** The member alert's own state (a member resolves with its incident, or by its own clear). */
    state: Type.Union(ALERT_STATES.map((c) => Type.Literal(c))),
    deviceId: Type.Optional(Id),
    roomId: Type.Optional(Id),
    residentId: Type.Optional(Id),
    /** When the point joined the incident (its alert was raised; platform clock, ms). */
    joinedAt: EpochMs,
    /** Device timestamp of what raised the point. */
    sourceTs: EpochMs,
    message: Bilingual,
    /** Present when the point is held back (recorded and shown, no notification of its own). */
    inhibited: Type.Optional(Type.Union(INHIBITION_REASONS.map((r) => Type.Literal(r)))),
  },
  { additionalProperties: false },
);
export type IncidentPoint = Static<typeof IncidentPoint>;

/** One incident change, on socket.io `incident`, MQTT `carewatch/v1/{homeId}/incidents` and REST. */
export const IncidentMessage = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128 }),
    homeId: Id,
    kind: Type.Union(INCIDENT_KINDS.map((k) => Type.Literal(k))),
    /** Care incidents: the resident. */
    residentId: Type.Optional(Id),
    /** Device incidents: the device (absent for a home-level communication loss). */
    deviceId: Type.Optional(Id),
    /** Every room a point is in, in the order they joined (first alarm point's room first). */
    roomIds: Type.Array(Id),
    /** Highest severity of its members (NFPA 72 / GB 4717: the panel shows the worst condition). */
    severity: Type.Union(SEVERITIES.map((c) => Type.Literal(c))),
    signal: Type.Union(SIGNAL_CLASSES.map((c) => Type.Literal(c))),
    state: Type.Union(ALERT_STATES.map((c) => Type.Literal(c))),
    /** Increases by one with every change, so clients drop stale copies. */
    version: Type.Integer({ minimum: 1 }),
    /** When this change happened (platform clock, ms). */
    ts: EpochMs,
    openedAt: EpochMs,
    /** The alert that opened the incident (the first alarm point). */
    firstAlertId: Type.String({ minLength: 1, maxLength: 128 }),
    points: Type.Array(IncidentPoint),
    /** The first alarm point's text, or the worst point's once it outranks the first. */
    message: Bilingual,
    pushedAt: Type.Optional(EpochMs),
    bureauPushedAt: Type.Optional(EpochMs),
    acknowledgedBy: Type.Optional(Type.String()),
    acknowledgedAt: Type.Optional(EpochMs),
    confirmation: Type.Optional(Type.Union(CONFIRMATIONS.map((c) => Type.Literal(c)))),
    confirmedBy: Type.Optional(Type.String()),
    confirmedAt: Type.Optional(EpochMs),
    escalationLevel: Type.Optional(Type.Integer({ minimum: 0 })),
    resolvedAt: Type.Optional(EpochMs),
    resolvedBy: Type.Optional(Type.String()),
    comment: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
export type IncidentMessage = Static<typeof IncidentMessage>;

export const DISABLEMENT_SCOPES = ['device', 'room', 'home'] as const;
export type DisablementScope = (typeof DISABLEMENT_SCOPES)[number];
/** `test`: the point is being tested (a panel's test mode); `disabled`: out of service (屏蔽). */
export const DISABLEMENT_MODES = ['test', 'disabled'] as const;
export type DisablementMode = (typeof DISABLEMENT_MODES)[number];

/** Longest a point may stay disabled in one go: a forgotten test mode must end by itself. */
export const MAX_DISABLEMENT_MS = 24 * 60 * 60_000;

export const DisablementRequest = Type.Object(
  {
    scope: Type.Union(DISABLEMENT_SCOPES.map((s) => Type.Literal(s))),
    /** The device or room id; for `home`, the home id itself. */
    targetId: Id,
    mode: Type.Union(DISABLEMENT_MODES.map((m) => Type.Literal(m))),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
    /** How long, minutes (at most MAX_DISABLEMENT_MS). */
    durationMin: Type.Integer({ minimum: 1, maximum: MAX_DISABLEMENT_MS / 60_000 }),
  },
  { additionalProperties: false },
);
export type DisablementRequest = Static<typeof DisablementRequest>;

export const Disablement = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128 }),
    homeId: Id,
    scope: Type.Union(DISABLEMENT_SCOPES.map((s) => Type.Literal(s))),
    targetId: Id,
    mode: Type.Union(DISABLEMENT_MODES.map((m) => Type.Literal(m))),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
    by: Type.String(),
    startedAt: EpochMs,
    /** When it ends by itself. */
    until: EpochMs,
    /** Set once it has ended (by itself at `until`, or by a person). */
    endedAt: Type.Optional(EpochMs),
    endedBy: Type.Optional(Type.String()),
    /** Signals recorded while it was in force (they raised no fire alarm). */
    suppressedSignals: Type.Integer({ minimum: 0 }),
    version: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type Disablement = Static<typeof Disablement>;
