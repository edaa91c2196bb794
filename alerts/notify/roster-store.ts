import { join } from 'node:path';
import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { homeKind, type Roster, type RosterPerson } from '../../contract/registry.ts';
import { canSeeHome, type Actor } from '../access.ts';
import { fail, type AlertErrorCode, type Outcome } from '../errors.ts';
import { readJson, writeJsonAtomic } from '../state-file.ts';
import { rosterProblems } from './roster.ts';

/**
 * The on-call rosters in force (issue 15): the registry's (`rosters`, `contacts.bureau`) at start,
 * replaced per home by a director's edit (PUT /api/homes/:homeId/roster). Edits are written to
 * `rosters.json` in the state directory (atomic rename) before they are answered, with an
 * append-only audit: who changed which home's roster when, what changed, and the roster after.
 */

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

interface StateFile {
  readonly version: 1;
  readonly rosters: Record<string, Roster>;
  readonly audit: RosterAuditEntry[];
}

export interface RosterStore {
  start(): Promise<void>;
  close(): Promise<void>;
  /** The roster in force for a home (edited, else the registry's). */
  roster(homeId: string): Roster | undefined;
  bureau(): readonly RosterPerson[];
  view(actor: Actor, homeId: string): Outcome<{ roster: Roster | undefined; audit: RosterAuditEntry[] }>;
  put(actor: Actor, homeId: string, roster: Roster): Promise<Outcome<Roster>>;
  stats(): { edits: number; rejected: Record<string, number> };
}

export interface RosterStoreDeps {
  readonly registry: RegistryIndex;
  readonly stateDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** A human-readable diff of two rosters (what the audit says changed). */
export function rosterChanges(before: Roster | undefined, after: Roster): string[] {
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
  diff('director', before.directors, after.directors, person);
  diff('shift', before.shifts, after.shifts, (s) => `${s.name} ${s.start}-${s.end} days ${s.days.join(',')} [${s.people.join(',')}]`);
  return out.length > 0 ? out : ['no change'];
}

export function createRosterStore(deps: RosterStoreDeps): RosterStore {
  const { registry, clock, logger } = deps;
  const path = join(deps.stateDir, ROSTERS_FILE);
  const fromRegistry = new Map((registry.site.rosters ?? []).map((r) => [r.homeId, r]));
  const edited = new Map<string, Roster>();
  const audit: RosterAuditEntry[] = [];
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
    const p = registry.provider(home.providerId);
    return p === undefined ? undefined : { homeId, timezone: p.timezone, people: p.people, shifts: p.shifts, directors: p.managers };
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

  function persist(rosters: ReadonlyMap<string, Roster>, trail: RosterAuditEntry[]): Promise<void> {
    const state: StateFile = { version: 1, rosters: Object.fromEntries(rosters), audit: trail };
    return writeJsonAtomic(path, state);
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
    },
    async close() {
      await writing.catch(() => undefined);
    },
    roster: (homeId) => edited.get(homeId) ?? fromRegistry.get(homeId) ?? providerRoster(homeId),
    bureau: () => registry.site.contacts?.bureau ?? [],
    view(actor, homeId) {
      if (registry.home(homeId) === undefined || !canSeeHome(actor, homeId)) return fail('HOME_NOT_FOUND');
      return { ok: true, value: { roster: edited.get(homeId) ?? fromRegistry.get(homeId) ?? providerRoster(homeId), audit: audit.filter((e) => e.homeId === homeId) } };
    },
    put(actor, homeId, roster) {
      // One edit at a time: each builds the next file from the state the previous one left.
      const run = writing.catch(() => undefined).then(() => putNow(actor, homeId, roster));
      writing = run.then(() => undefined);
      return run;
    },
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
}
