import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { homeKind, RosterPerson, Shift, type Roster } from '../../contract/registry.ts';
import { ID_PATTERN } from '../../contract/topics.ts';
import { canSeeHome, seesAllHomes, type Actor } from '../access.ts';
import { fail, type AlertErrorCode, type Outcome } from '../errors.ts';
import { readJson, writeJsonAtomic } from '../state-file.ts';
import { hhmmToMin, minuteOfWeek, rosterProblems, shiftsAt } from './roster.ts';

/**
 * The on-call rosters in force (issue 15): the registry's (`rosters`, `contacts.bureau`,
 * `providers`) at start, replaced per home by a director's edit (PUT /api/homes/:homeId/roster) and
 * per home-care provider by its manager's (PUT /api/providers/:providerId/roster). Edits are
 * written to `rosters.json` in the state directory (atomic rename) before they are answered, with an
 * append-only audit: who changed which roster when, what changed, and the roster after.
 */

/**
 * A home-care provider's roster (issue 15): its caregivers on their shifts (ladder level 0 for
 * each of its households without a roster of its own) and its managers (level 1). The registry's
 * `Provider` minus its name and phone, which only the registry changes.
 */
export const ProviderRoster = Type.Object(
  {
    providerId: Type.String({ pattern: ID_PATTERN }),
    timezone: Type.String({ minLength: 1, maxLength: 64 }),
    people: Type.Array(RosterPerson, { maxItems: 500 }),
    shifts: Type.Array(Shift, { maxItems: 100 }),
    managers: Type.Array(RosterPerson, { maxItems: 20 }),
  },
  { additionalProperties: false },
);
export type ProviderRoster = Static<typeof ProviderRoster>;

/** Who is on duty at an instant and which shift starts next, for the page's roster screen. */
export interface DutyView {
  readonly at: number;
  /** The shifts in force at `at`, each with its people (ids). */
  readonly now: ReadonlyArray<{ readonly shiftId: string; readonly people: readonly string[] }>;
  /** The next shift start after `at` (a shift in force now may be next again on a later day). */
  readonly next: { readonly shiftId: string; readonly startsAt: number; readonly people: readonly string[] } | null;
}

export const ROSTERS_FILE = 'rosters.json';
/** Audit entries kept per home in the state file. */
const KEEP_AUDIT_PER_HOME = 500;

export interface RosterAuditEntry {
  readonly homeId: string;
  readonly seq: number;
  readonly ts: number;
  readonly action: 'roster_updated';
  readonly by: string;
  /** What changed, e.g. "shift night: 22:00-06:00 → 21:00-07:00", "person p3 added". */
  readonly changes: readonly string[];
  readonly roster: Roster;
}

export interface ProviderRosterAuditEntry {
  readonly providerId: string;
  readonly seq: number;
  readonly ts: number;
  readonly action: 'provider_roster_updated';
  readonly by: string;
  readonly changes: readonly string[];
  readonly roster: ProviderRoster;
}

interface StateFile {
  readonly version: 1;
  readonly rosters: Record<string, Roster>;
  readonly audit: RosterAuditEntry[];
  /** Issue 15 (additive: a file written before has neither): providers' edited rosters and their audit. */
  readonly providers?: Record<string, ProviderRoster>;
  readonly providerAudit?: ProviderRosterAuditEntry[];
}

export interface RosterViewOf<R, A> {
  readonly roster: R | undefined;
  readonly audit: A[];
  /** Whether this actor may replace the roster (the page shows the edit form only then). */
  readonly canEdit: boolean;
  readonly duty: DutyView | null;
}

export interface RosterStore {
  start(): Promise<void>;
  close(): Promise<void>;
  /** The roster in force for a home (edited, else the registry's). */
  roster(homeId: string): Roster | undefined;
  bureau(): readonly RosterPerson[];
  view(actor: Actor, homeId: string): Outcome<RosterViewOf<Roster, RosterAuditEntry>>;
  put(actor: Actor, homeId: string, roster: Roster): Promise<Outcome<Roster>>;
  /** A provider's roster in force (edited, else the registry's). */
  providerRoster(providerId: string): ProviderRoster | undefined;
  viewProvider(actor: Actor, providerId: string): Outcome<RosterViewOf<ProviderRoster, ProviderRosterAuditEntry>>;
  putProvider(actor: Actor, providerId: string, roster: ProviderRoster): Promise<Outcome<ProviderRoster>>;
  /** The households a provider serves (whose rosters its roster is, unless they have their own). */
  providerHouseholds(providerId: string): readonly string[];
  stats(): { edits: number; rejected: Record<string, number> };
}

export interface RosterStoreDeps {
  readonly registry: RegistryIndex;
  readonly stateDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The duty view at `at` (pure): the shifts in force and their people, and the next shift start.
 * The next start is found minute by minute of the local week, so it is exact in a zone without a
 * daylight-saving change in between, and an hour off across one (China has none).
 */
export function dutyAt(roster: Pick<Roster, 'shifts' | 'timezone'>, at: number): DutyView {
  const now = shiftsAt(roster, at, roster.timezone).map((s) => ({ shiftId: s.id, people: s.people }));
  const m = minuteOfWeek(at, roster.timezone);
  const WEEK = 7 * 24 * 60;
  let next: DutyView['next'] = null;
  let best = Infinity;
  for (const s of roster.shifts) {
    for (const day of s.days) {
      const start = (day - 1) * 24 * 60 + hhmmToMin(s.start);
      // Strictly after this minute: a shift that started this minute is "now", not "next".
      const ahead = (((start - m) % WEEK) + WEEK) % WEEK || WEEK;
      if (ahead < best) {
        best = ahead;
        next = { shiftId: s.id, startsAt: at - (at % 60_000) + ahead * 60_000, people: s.people };
      }
    }
  }
  return { at, now, next };
}

/** A provider's roster in the shape of a home's, so one check and one diff serve both. */
function asRoster(p: ProviderRoster): Roster {
  return { homeId: p.providerId, timezone: p.timezone, people: p.people, shifts: p.shifts, directors: p.managers };
}

/** A human-readable diff of two rosters (what the audit says changed). */
export function rosterChanges(before: Roster | undefined, after: Roster, directorWord = 'director'): string[] {
  if (before === undefined) return ['roster created'];
  const out: string[] = [];
  if (before.timezone !== after.timezone) out.push(`timezone: ${before.timezone} → ${after.timezone}`);
  const diff = <T extends { id: string }>(what: string, a: readonly T[], b: readonly T[], show: (x: T) => string): void => {
    const old = new Map(a.map((x) => [x.id, x]));
    const now = new Map(b.map((x) => [x.id, x]));
    for (const [id, x] of now) {
      const prior = old.get(id);
      if (prior === undefined) out.push(`${what} ${id} added: ${show(x)}`);
      else if (JSON.stringify(prior) !== JSON.stringify(x)) out.push(`${what} ${id}: ${show(prior)} → ${show(x)}`);
    }
    for (const id of old.keys()) if (!now.has(id)) out.push(`${what} ${id} removed`);
  };
  const person = (p: RosterPerson): string => `${p.name} (${p.role}${p.phone !== undefined ? `, ${p.phone}` : ''})`;
  diff('person', before.people, after.people, person);
  diff(directorWord, before.directors, after.directors, person);
  diff('shift', before.shifts, after.shifts, (s) => `${s.name} ${s.start}-${s.end} days ${s.days.join(',')} [${s.people.join(',')}]`);
  return out.length > 0 ? out : ['no change'];
}

export function createRosterStore(deps: RosterStoreDeps): RosterStore {
  const { registry, clock, logger } = deps;
  const path = join(deps.stateDir, ROSTERS_FILE);
  const fromRegistry = new Map((registry.site.rosters ?? []).map((r) => [r.homeId, r]));
  const edited = new Map<string, Roster>();
  const audit: RosterAuditEntry[] = [];
  const editedProviders = new Map<string, ProviderRoster>();
  const providerAudit: ProviderRosterAuditEntry[] = [];
  const rejected: Record<string, number> = {};
  const lastLogged = new Map<string, number>();
  let edits = 0;
  let writing: Promise<void> = Promise.resolve();

  /**
   * Issue 15: a household's roster is its home-care provider's — the provider's caregivers on their
   * shifts (ladder level 0) and its managers in the directors' place (level 1) — unless the registry
   * or an edit gives the household a roster of its own.
   */
  function providerRoster(homeId: string): Roster | undefined {
    const home = registry.home(homeId);
    if (home === undefined || homeKind(home) !== 'household' || home.providerId === undefined) return undefined;
    const p = providerInForce(home.providerId);
    return p === undefined ? undefined : { homeId, timezone: p.timezone, people: p.people, shifts: p.shifts, directors: p.managers };
  }

  /** A provider's roster: its manager's edit, else the registry's. */
  function providerInForce(providerId: string): ProviderRoster | undefined {
    const edit = editedProviders.get(providerId);
    if (edit !== undefined) return edit;
    const p = registry.provider(providerId);
    return p === undefined ? undefined : { providerId, timezone: p.timezone, people: p.people, shifts: p.shifts, managers: p.managers };
  }

  /**
   * A provider's manager (issue 15): a user of role `provider` of that provider whose username is
   * the id of one of the provider's managers in the registry. The registry decides, not the roster
   * being edited: a manager cannot make a caregiver a manager by adding them to `managers`.
   */
  function managesProvider(actor: Actor, providerId: string): boolean {
    return actor.role === 'provider' && actor.providerId === providerId && (registry.provider(providerId)?.managers.some((m) => m.id === actor.username) ?? false);
  }

  /** Whether the actor may see the provider's roster: its own users, the bureau and admins. */
  function canSeeProvider(actor: Actor, providerId: string): boolean {
    return seesAllHomes(actor) || (actor.role === 'provider' && actor.providerId === providerId);
  }

  function homeRoster(homeId: string): Roster | undefined {
    return edited.get(homeId) ?? fromRegistry.get(homeId) ?? providerRoster(homeId);
  }

  function duty(roster: Roster | ProviderRoster | undefined): DutyView | null {
    if (roster === undefined) return null;
    try {
      return dutyAt(roster, clock.now());
    } catch {
      // An unknown zone in the registry (an edit is checked): the roster is shown without the duty view.
      return null;
    }
  }

  function refuse<T>(code: AlertErrorCode, actor: Actor, homeId: string, message?: string): Outcome<T> {
    rejected[code] = (rejected[code] ?? 0) + 1;
    // Logged at most once a minute per code: a client retrying a bad roster must not flood the log.
    const now = clock.now();
    if ((lastLogged.get(code) ?? -Infinity) + 60_000 <= now) {
      lastLogged.set(code, now);
      logger.warn({ code, by: actor.username, homeId, reason: message, count: rejected[code] }, 'roster change refused');
    }
    return fail(code, message);
  }

  function persist(rosters: ReadonlyMap<string, Roster>, trail: RosterAuditEntry[], providers: ReadonlyMap<string, ProviderRoster> = editedProviders, pTrail: ProviderRosterAuditEntry[] = providerAudit): Promise<void> {
    const state: StateFile = { version: 1, rosters: Object.fromEntries(rosters), audit: trail, providers: Object.fromEntries(providers), providerAudit: pTrail };
    return writeJsonAtomic(path, state);
  }

  /** Serialises edits (homes and providers alike): each builds the next file from the state the previous one left. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = writing.catch(() => undefined).then(fn);
    writing = run.then(() => undefined);
    return run;
  }

  return {
    async start() {
      let state: unknown;
      try {
        state = await readJson(path);
      } catch (err) {
        // A corrupt file costs the edits since, not the process: the registry's rosters stay in force.
        logger.error({ err, code: 'ALERTS_ROSTERS_UNREADABLE', path }, 'ignoring the rosters file');
        return;
      }
      if (typeof state !== 'object' || state === null || (state as StateFile).version !== 1) return;
      const s = state as StateFile;
      for (const [homeId, roster] of Object.entries(s.rosters ?? {})) if (registry.home(homeId) !== undefined) edited.set(homeId, roster);
      if (Array.isArray(s.audit)) audit.push(...s.audit);
      for (const [providerId, roster] of Object.entries(s.providers ?? {})) if (registry.provider(providerId) !== undefined) editedProviders.set(providerId, roster);
      if (Array.isArray(s.providerAudit)) providerAudit.push(...s.providerAudit);
    },
    async close() {
      await writing.catch(() => undefined);
    },
    roster: homeRoster,
    bureau: () => registry.site.contacts?.bureau ?? [],
    view(actor, homeId) {
      if (registry.home(homeId) === undefined || !canSeeHome(actor, homeId)) return fail('HOME_NOT_FOUND');
      const roster = homeRoster(homeId);
      const canEdit = actor.role === 'admin' || (actor.role === 'director' && actor.homeId === homeId);
      return { ok: true, value: { roster, audit: audit.filter((e) => e.homeId === homeId), canEdit, duty: duty(roster) } };
    },
    put: (actor, homeId, roster) => serial(() => putNow(actor, homeId, roster)),
    providerRoster: providerInForce,
    viewProvider(actor, providerId) {
      if (registry.provider(providerId) === undefined || !canSeeProvider(actor, providerId)) return fail('PROVIDER_NOT_FOUND');
      const roster = providerInForce(providerId);
      const canEdit = actor.role === 'admin' || managesProvider(actor, providerId);
      return { ok: true, value: { roster, audit: providerAudit.filter((e) => e.providerId === providerId), canEdit, duty: duty(roster) } };
    },
    putProvider: (actor, providerId, roster) => serial(() => putProviderNow(actor, providerId, roster)),
    providerHouseholds: (providerId) => registry.householdsOfProvider(providerId),
    stats: () => ({ edits, rejected: { ...rejected } }),
  };

  async function putNow(actor: Actor, homeId: string, roster: Roster): Promise<Outcome<Roster>> {
    if (registry.home(homeId) === undefined || !canSeeHome(actor, homeId)) return refuse('HOME_NOT_FOUND', actor, homeId);
    // Directors act for their own home (issue 15); admins for any. Staff and bureau read only.
    if (actor.role !== 'director' && actor.role !== 'admin') return refuse('AUTH_FORBIDDEN', actor, homeId);
    if (roster.homeId !== homeId) return refuse('ROSTER_INVALID', actor, homeId, `the roster is for ${roster.homeId}, not ${homeId}`);
    const problems = rosterProblems(roster);
    if (problems.length > 0) return refuse('ROSTER_INVALID', actor, homeId, problems.slice(0, 5).join('; '));
    const before = edited.get(homeId) ?? fromRegistry.get(homeId);
    const homeAudit = audit.filter((e) => e.homeId === homeId);
    const entry: RosterAuditEntry = { homeId, seq: (homeAudit.at(-1)?.seq ?? 0) + 1, ts: clock.now(), action: 'roster_updated', by: actor.username, changes: rosterChanges(before, roster), roster };
    const nextRosters = new Map(edited).set(homeId, roster);
    const nextAudit = [...audit, entry];
    if (homeAudit.length + 1 > KEEP_AUDIT_PER_HOME) nextAudit.splice(nextAudit.findIndex((e) => e.homeId === homeId), 1);
    // Written before it takes effect and is answered: a director told "saved" must find the roster
    // after a restart, and one told "failed" (500) must not find it in force.
    await persist(nextRosters, nextAudit);
    edited.set(homeId, roster);
    audit.splice(0, audit.length, ...nextAudit);
    edits++;
    logger.info({ homeId, by: actor.username, changes: entry.changes }, 'roster changed');
    return { ok: true, value: roster };
  }

  async function putProviderNow(actor: Actor, providerId: string, roster: ProviderRoster): Promise<Outcome<ProviderRoster>> {
    if (registry.provider(providerId) === undefined || !canSeeProvider(actor, providerId)) return refuse('PROVIDER_NOT_FOUND', actor, providerId);
    // The provider's managers (issue 15) act for their provider; admins for any. Caregivers and the bureau read only.
    if (actor.role !== 'admin' && !managesProvider(actor, providerId)) return refuse('AUTH_FORBIDDEN', actor, providerId);
    if (roster.providerId !== providerId) return refuse('ROSTER_INVALID', actor, providerId, `the roster is for ${roster.providerId}, not ${providerId}`);
    const problems = rosterProblems(asRoster(roster));
    if (problems.length > 0) return refuse('ROSTER_INVALID', actor, providerId, problems.slice(0, 5).join('; '));
    const before = providerInForce(providerId);
    const trail = providerAudit.filter((e) => e.providerId === providerId);
    const entry: ProviderRosterAuditEntry = {
      providerId, seq: (trail.at(-1)?.seq ?? 0) + 1, ts: clock.now(), action: 'provider_roster_updated', by: actor.username,
      changes: rosterChanges(before && asRoster(before), asRoster(roster), 'manager'), roster,
    };
    const next = new Map(editedProviders).set(providerId, roster);
    const nextAudit = [...providerAudit, entry];
    if (trail.length + 1 > KEEP_AUDIT_PER_HOME) nextAudit.splice(nextAudit.findIndex((e) => e.providerId === providerId), 1);
    // As for a home: on disk before it is in force and answered.
    await persist(edited, audit, next, nextAudit);
    editedProviders.set(providerId, roster);
    providerAudit.splice(0, providerAudit.length, ...nextAudit);
    edits++;
    logger.info({ providerId, by: actor.username, changes: entry.changes }, 'provider roster changed');
    return { ok: true, value: roster };
  }
}
