import { Type, type Static } from '@sinclair/typebox';
import { ID_PATTERN } from './topics.ts';
import { DEVICE_KIND_NAMES, type DeviceKind } from './device-kinds.ts';
import { SEVERITIES } from './payloads.ts';

/**
 * The site registry: homes, their floors and rooms, devices, residents, service accounts and
 * users. One JSON file (config/demo-site.json for the demo; docs/registry.md documents it). Secrets
 * appear only as hashes (common/secrets.ts formats).
 */
const Id = Type.String({ pattern: ID_PATTERN });
const SCRYPT_HASH = 'scrypt\\$\\d+\\$\\d+\\$\\d+\\$[A-Za-z0-9+/=]+\\$[A-Za-z0-9+/=]+';
const HMAC_HASH = 'hmac-sha256\\$[A-Za-z0-9+/=]+\\$[A-Za-z0-9+/]{43}=';
/**
 * A machine secret's hash (device, service account): `hmac-sha256$salt$mac` for 128-bit random
 * secrets, or `scrypt$N$r$p$salt$hash` as registries before issue 12 wrote it (both verified).
 */
const SecretHash = Type.String({ pattern: `^(?:${HMAC_HASH}|${SCRYPT_HASH})$` });
/**
 * A person's password hash: scrypt only. A memorised password needs a costly KDF (NIST SP 800-63B
 * §5.1.1.2), so a fast `hmac-sha256$` hash here is refused when the registry is loaded.
 */
const PasswordHash = Type.String({ pattern: `^${SCRYPT_HASH}$` });

export const ROOM_KINDS = ['bedroom', 'corridor', 'kitchen', 'dining', 'activity', 'bathroom', 'office', 'stairwell', 'plant', 'laundry'] as const;

export const Room = Type.Object(
  {
    id: Id,
    name: Type.String({ minLength: 1 }),
    nameEn: Type.String({ minLength: 1 }),
    kind: Type.Union(ROOM_KINDS.map((k) => Type.Literal(k))),
    /** Rooms sharing a wall or door: used for multi-detector confirmation. */
    adjacent: Type.Array(Id, { default: [] }),
    /** Per-room overrides of rule thresholds (e.g. a kitchen's heat threshold). */
    thresholds: Type.Optional(Type.Record(Type.String(), Type.Number())),
  },
  { additionalProperties: false },
);
export type Room = Static<typeof Room>;

export const Floor = Type.Object(
  { id: Id, name: Type.String(), nameEn: Type.String(), level: Type.Integer(), rooms: Type.Array(Room) },
  { additionalProperties: false },
);
export type Floor = Static<typeof Floor>;


export const Device = Type.Object(
  {
    id: Id,
    homeId: Id,
    roomId: Id,
    kind: Type.Union(DEVICE_KIND_NAMES.map((k) => Type.Literal(k))),
    /** Resident the device is attached to (care devices). */
    residentId: Type.Optional(Id),
    secretHash: SecretHash,
    /** True for the demo site's documented secrets: refused when NODE_ENV=production. */
    demoSecret: Type.Optional(Type.Boolean()),
    thresholds: Type.Optional(Type.Record(Type.String(), Type.Number())),
  },
  { additionalProperties: false },
);
export type Device = Omit<Static<typeof Device>, 'kind'> & { kind: DeviceKind };

export const Resident = Type.Object(
  {
    id: Id,
    homeId: Id,
    roomId: Id,
    bed: Type.String({ minLength: 1 }),
    name: Type.String({ minLength: 1 }),
    age: Type.Integer({ minimum: 0, maximum: 130 }),
    /** NEWS2 SpO2 Scale 2 applies (hypercapnic respiratory failure, confirmed by a clinician). */
    hypercapnic: Type.Boolean({ default: false }),
    fallRisk: Type.Boolean({ default: false }),
    /** Repositioning interval, minutes (1–4 h; default 2 h). */
    turnIntervalMin: Type.Integer({ minimum: 60, maximum: 240, default: 120 }),
    /** Personal limits set by staff, e.g. { heart_rate_bpm_low: 45 }. */
    limits: Type.Optional(Type.Record(Type.String(), Type.Number())),
  },
  { additionalProperties: false },
);
export type Resident = Static<typeof Resident>;

export const SERVICE_ROLES = ['ingest', 'alerts', 'integration', 'simulator'] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

/** A platform process's MQTT account. */
export const ServiceAccount = Type.Object(
  {
    id: Id,
    role: Type.Union(SERVICE_ROLES.map((r) => Type.Literal(r))),
    secretHash: SecretHash,
    demoSecret: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ServiceAccount = Static<typeof ServiceAccount>;

/** `provider`: a home-care provider's caregiver or manager (issue 15); sees that provider's households only. */
export const USER_ROLES = ['staff', 'director', 'bureau', 'admin', 'provider'] as const;
export type UserRole = (typeof USER_ROLES)[number];

export const User = Type.Object(
  {
    username: Id,
    displayName: Type.String({ minLength: 1 }),
    role: Type.Union(USER_ROLES.map((r) => Type.Literal(r))),
    /** Required for staff and director; bureau and admin see every home. */
    homeId: Type.Optional(Id),
    /** Required for role `provider` (and only for it): the provider whose households the user sees. */
    providerId: Type.Optional(Id),
    passwordHash: PasswordHash,
    demoSecret: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type User = Static<typeof User>;

/**
 * On-call rosters (issue 15; additive, optional). A person who can be reached: their channel
 * addresses are keyed by the notification channel id of the alerts process's notify config (e.g.
 * `{ "sms": "+8613800000000", "oncall-hook": "nurse-li" }`); `phone` is the fallback address and is
 * what group robots @-mention.
 */
const HHMM = '^(?:[01]\\d|2[0-3]):[0-5]\\d$';
/** A phone number: digits with an optional leading + (E.164 allows at most 15; 20 leaves room for extensions). */
const Phone = Type.String({ pattern: '^\\+?[0-9]{5,20}$' });
/** A person's address per notification channel id. */
const ChannelAddresses = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), Type.String({ minLength: 1, maxLength: 500 }));
export const RosterPerson = Type.Object(
  {
    id: Id,
    name: Type.String({ minLength: 1, maxLength: 100 }),
    role: Type.String({ minLength: 1, maxLength: 50, description: 'e.g. nurse, carer, director, bureau officer' }),
    phone: Type.Optional(Phone),
    addresses: Type.Optional(ChannelAddresses),
  },
  { additionalProperties: false },
);
export type RosterPerson = Static<typeof RosterPerson>;

/**
 * A shift: local start and end time (HH:MM, the home's time zone) on the weekdays it starts on
 * (ISO 1 = Monday … 7 = Sunday). `end` <= `start` crosses midnight (a 22:00–06:00 night shift that
 * starts on Monday covers Tuesday 03:00); `end` == `start` is a 24-hour shift.
 */
export const Shift = Type.Object(
  {
    id: Id,
    name: Type.String({ minLength: 1, maxLength: 100 }),
    days: Type.Array(Type.Integer({ minimum: 1, maximum: 7 }), { minItems: 1, maxItems: 7, uniqueItems: true }),
    start: Type.String({ pattern: HHMM }),
    end: Type.String({ pattern: HHMM }),
    /** Person ids of `people` on duty during this shift. */
    people: Type.Array(Id, { maxItems: 100 }),
  },
  { additionalProperties: false },
);
export type Shift = Static<typeof Shift>;

export const Roster = Type.Object(
  {
    homeId: Id,
    /** IANA time zone the shift times are in, e.g. Asia/Shanghai. */
    timezone: Type.String({ minLength: 1, maxLength: 64 }),
    people: Type.Array(RosterPerson, { maxItems: 500 }),
    shifts: Type.Array(Shift, { maxItems: 100 }),
    /** The home's director(s): ladder level 1. */
    directors: Type.Array(RosterPerson, { maxItems: 20 }),
  },
  { additionalProperties: false },
);
export type Roster = Static<typeof Roster>;


/**
 * A household's family contact (issue 15): reached like a roster person (`addresses` per channel
 * id, `phone` the fallback) at ladder level 0 beside the provider's caregiver on duty, for an
 * incident whose severity is in `severities` (empty: kept as a contact, never notified).
 */
export const FamilyContact = Type.Object(
  {
    id: Id,
    name: Type.String({ minLength: 1, maxLength: 100 }),
    relation: Type.String({ minLength: 1, maxLength: 50, description: 'e.g. 女儿 daughter, 儿子 son' }),
    phone: Type.Optional(Phone),
    addresses: Type.Optional(ChannelAddresses),
    severities: Type.Array(Type.Union(SEVERITIES.map((s) => Type.Literal(s))), { uniqueItems: true, default: ['critical'] }),
  },
  { additionalProperties: false },
);
export type FamilyContact = Static<typeof FamilyContact>;

/**
 * A third-party home-care provider (issue 15): its caregivers on an on-call roster (the same
 * people/shifts shape and semantics as a care home's roster) and its managers (ladder level 1 for
 * its households, as a director is for a care home).
 */
export const Provider = Type.Object(
  {
    id: Id,
    name: Type.String({ minLength: 1, maxLength: 100 }),
    nameEn: Type.String({ minLength: 1, maxLength: 100 }),
    phone: Type.Optional(Phone),
    /** IANA time zone of the shift times. */
    timezone: Type.String({ minLength: 1, maxLength: 64 }),
    people: Type.Array(RosterPerson, { maxItems: 500 }),
    shifts: Type.Array(Shift, { maxItems: 100 }),
    managers: Type.Array(RosterPerson, { maxItems: 20 }),
  },
  { additionalProperties: false },
);
export type Provider = Static<typeof Provider>;

/** Site-wide contacts: the bureau's officers (ladder level 2). */
export const SiteContacts = Type.Object({ bureau: Type.Array(RosterPerson, { maxItems: 50 }) }, { additionalProperties: false });
export type SiteContacts = Static<typeof SiteContacts>;

export const HOME_KINDS = ['care-home', 'household'] as const;
export type HomeKind = (typeof HOME_KINDS)[number];

export const Home = Type.Object(
  {
    id: Id,
    name: Type.String({ minLength: 1 }),
    nameEn: Type.String({ minLength: 1 }),
    address: Type.String(),
    floors: Type.Array(Floor, { minItems: 1 }),
    /** Per-home alarm-handling deadlines (NFPA 72 positive alarm sequence defaults 15 s / 180 s). */
    ackDeadlineS: Type.Optional(Type.Integer({ minimum: 1, maximum: 600 })),
    confirmDeadlineS: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
    /**
     * Issue 15 "elders who live at home" (additive): a `household` is a bedridden elder's own home,
     * served by a third-party home-care provider. It is a site like a care home (same topics,
     * devices, rules, partitioning, incidents); absent means `care-home`.
     */
    kind: Type.Optional(Type.Union(HOME_KINDS.map((k) => Type.Literal(k)))),
    /** Households: the home-care provider responsible (required for a household). */
    providerId: Type.Optional(Id),
    /** Households: the family, told of alarms at the severities each asked for. */
    familyContacts: Type.Optional(Type.Array(FamilyContact, { maxItems: 20 })),
  },
  { additionalProperties: false },
);
export type Home = Static<typeof Home>;

/** A home's kind: `care-home` unless the registry says `household`. */
export function homeKind(home: Pick<Home, 'kind'>): HomeKind {
  return home.kind ?? 'care-home';
}

export const SiteRegistry = Type.Object(
  {
    version: Type.Literal(1),
    name: Type.String(),
    homes: Type.Array(Home, { minItems: 1 }),
    devices: Type.Array(Device),
    residents: Type.Array(Resident),
    services: Type.Array(ServiceAccount),
    users: Type.Array(User),
    /** Issue 15 (additive): on-call rosters per home, and the bureau's contacts. */
    rosters: Type.Optional(Type.Array(Roster)),
    contacts: Type.Optional(SiteContacts),
    /** Issue 15 (additive): home-care providers serving the households. */
    providers: Type.Optional(Type.Array(Provider, { maxItems: 1000 })),
  },
  { additionalProperties: false },
);
export type SiteRegistry = Omit<Static<typeof SiteRegistry>, 'devices'> & { devices: Device[] };
