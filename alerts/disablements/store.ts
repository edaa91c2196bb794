import { randomUUID } from 'node:crypto';
import type { Clock, ClockTimer } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import { MAX_DISABLEMENT_MS, type Disablement, type DisablementRequest } from '../../contract/incidents.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { canSeeHome, type Actor } from '../access.ts';
import { fail, type AlertErrorCode, type Outcome } from '../errors.ts';
import { SYSTEM_ACTOR } from '../lifecycle.ts';
import { openInfluxDatabase, type InfluxDatabase } from '../../common/influx/database.ts';
import { allRows as rows } from '../../common/influx/reader.ts';
import { createJournalWriter, type JournalRecord, type JournalStats, type JournalWriter } from '../persistence/journal-writer.ts';
import { fnv1a, nsTime, toLine } from '../../common/influx/line-protocol.ts';
import type { Signal } from '../rules/types.ts';
import { readJson, writeTextAtomic } from '../state-file.ts';
import { checkRequest, coveredDevices, filterSignals, isInForce, mayManage, releaseHeld, type DisablementAuditAction, type DisablementAuditEntry, type HeldSignal } from './core.ts';

/**
 * The disablements of the alerts process (issue 11, test and maintenance mode): the pure core
 * (core.ts) decides; this adapter keeps them, ends each by itself at `until` (a clock timer),
 * audits every step and survives a restart.
 *
 * Persistence, two ways, merged at start (newest version per id wins, audit entries by seq):
 * - `disablements.json` in the state dir, rewritten atomically on every change: the ones in force,
 *   those ended in the last 7 days, their audit, and the conditions held back (so a condition
 *   suppressed before a restart is still raised when its disablement ends after it);
 * - InfluxDB `disablement` (one point per version) and `disablement_audit` (one per audit entry),
 *   through a journaled writer of their own (nothing lost while InfluxDB is down): the lasting
 *   history the bureau queries, and the restore source when the state file is gone.
 */

const STATE_VERSION = 1;
/** Ended disablements stay listed (GET ?all=true, GET /:id from memory) this long. */
const RECENT_ENDED_MS = 7 * 86_400_000;
const MAX_ENDED_KEPT = 500;
/** Audit entries kept in memory per disablement; every entry still goes to InfluxDB. */
const MAX_AUDIT_IN_MEMORY = 1000;
/** A bound on memory and on the page: a whole home is one disablement, not hundreds. */
export const MAX_IN_FORCE_PER_HOME = 200;
const REJECT_LOG_EVERY_MS = 60_000;

export interface DisablementWithAudit {
  readonly disablement: Disablement;
  readonly audit: readonly DisablementAuditEntry[];
}

export interface DisablementStats {
  readonly inForce: number;
  /** Fire-system devices currently out of fire alarming (a device under two disablements counts once). */
  readonly disabledPoints: number;
  /** Conditions held back now. */
  readonly held: number;
  /** Suppressed signal onsets since start. */
  readonly suppressed: number;
  readonly rejected: Readonly<Record<string, number>>;
  readonly journal?: JournalStats;
  readonly problems: string[];
}

export interface DisablementStore {
  start(): Promise<void>;
  /** The conditions held for one home now (saved in its state file in partitioned mode). */
  heldOf(homeId: string): Array<{ key: string } & HeldSignal>;
  /** Before start: conditions held for owned homes, read from their state files (a home moved here). */
  adoptHeld(entries: ReadonlyArray<{ key: string } & HeldSignal>): void;
  /** Signals of one evaluation → those that go on to the lifecycle. Records what it holds back; never throws. */
  filter(signals: readonly Signal[]): readonly Signal[];
  create(actor: Actor, homeId: string, req: DisablementRequest): Outcome<Disablement>;
  end(actor: Actor, id: string): Outcome<Disablement>;
  /** Disablements in force now (of one home, or all). */
  inForce(homeId?: string): Disablement[];
  /** What the actor may see (staff and directors: their home; bureau and admin: all), newest first. */
  visibleTo(actor: Actor, opts?: { includeEnded?: boolean; homeId?: string }): Disablement[];
  /** One disablement with its audit trail, from memory or (older ones) InfluxDB. */
  find(actor: Actor, id: string): Promise<Outcome<DisablementWithAudit>>;
  drained(): Promise<void>;
  stats(): DisablementStats;
  close(): Promise<void>;
}

export interface DisablementStoreDeps {
  readonly registry: RegistryIndex;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The state file (alerts state dir). */
  readonly statePath: string;
  /** InfluxDB history through a journal of its own; absent: the state file only. */
  readonly history?: { readonly influx?: InfluxDatabase; readonly influxUrl: string; readonly database: string; readonly journalPath: string };
  readonly newId?: () => string;
  /** Every change of a disablement (created, a suppression counted, ended). */
  readonly onChange?: (d: Disablement) => void;
  /** Conditions still active when the disablement holding them ended: raise them now. */
  readonly onRelease?: (signals: readonly Signal[]) => void;
  /**
   * Partitioned mode: the homes this instance owns. Conditions held for another home are not kept
   * (they moved with their home's state file, `heldOf`/`adoptHeld`): raised here, they would be
   * alarms of a home whose page and ladder are on another instance.
   */
  readonly owns?: (homeId: string) => boolean;
}

type Meta = { kind: 'disablement'; d: Disablement } | { kind: 'audit'; e: DisablementAuditEntry };

interface StateFile {
  readonly version: typeof STATE_VERSION;
  readonly savedAt: number;
  readonly disablements: Disablement[];
  readonly audit: DisablementAuditEntry[];
  readonly held: Array<{ key: string } & HeldSignal>;
}

const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** One version of a disablement; `ts` is when that change happened (platform clock, ms). */
export function disablementLine(d: Disablement, ts: number): string {
  return toLine({
    measurement: 'disablement',
    tags: { home: d.homeId, scope: d.scope, mode: d.mode, disablement_id: d.id },
    fields: { id: d.id, version: { int: d.version }, json: JSON.stringify(d), in_force: d.endedAt === undefined },
    timeNs: nsTime(ts, (fnv1a(d.id) % 1000) * 1000 + (d.version % 1000)),
  });
}

export function disablementAuditLine(e: DisablementAuditEntry): string {
  return toLine({
    measurement: 'disablement_audit',
    tags: { home: e.homeId, action: e.action, disablement_id: e.disablementId },
    fields: { seq: { int: e.seq }, json: JSON.stringify(e) },
    timeNs: nsTime(e.ts, (fnv1a(e.disablementId) % 1000) * 1000 + (e.seq % 1000)),
  });
}

function parse<T>(v: unknown): T | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    return JSON.parse(v) as T;
  } catch {
    return undefined;
  }
}

export function createDisablementStore(deps: DisablementStoreDeps): DisablementStore {
  const { registry, clock } = deps;
  const log = deps.logger.child({ component: 'disablements' });
  const newId = deps.newId ?? randomUUID;
  const all = new Map<string, Disablement>();
  const audits = new Map<string, DisablementAuditEntry[]>();
  const held = new Map<string, HeldSignal>();
  const adopted: Array<{ key: string } & HeldSignal> = [];
  const timers = new Map<string, ClockTimer>();
  const rejected: Record<string, number> = {};
  const rejectLoggedAt = new Map<string, number>();
  let suppressedTotal = 0;
  let started = false;
  let closed = false;
  let saveChain: Promise<void> = Promise.resolve();
  let saveQueued = false;
  let saveFailing = false;

  const influx = deps.history === undefined ? undefined : (deps.history.influx ?? openInfluxDatabase({ url: deps.history.influxUrl, database: deps.history.database }));
  const writer: JournalWriter<Meta> | undefined =
    deps.history === undefined || influx === undefined ? undefined : createJournalWriter<Meta>({ path: deps.history.journalPath, influx, clock, logger: log, cover: { request: () => persist() } });

  /** Cached list of those in force; rebuilt on change (the hot path reads it for every signal batch). */
  let inForceCache: Disablement[] | undefined;
  const inForceNow = (): Disablement[] => (inForceCache ??= [...all.values()].filter((d) => d.endedAt === undefined).sort((a, b) => b.startedAt - a.startedAt));

  function reject<T>(code: AlertErrorCode, actor: Actor, message?: string): Outcome<T> {
    rejected[code] = (rejected[code] ?? 0) + 1;
    const now = clock.now();
    const last = rejectLoggedAt.get(code);
    if (last === undefined || now - last >= REJECT_LOG_EVERY_MS) {
      rejectLoggedAt.set(code, now);
      log.info({ code, username: actor.username, count: rejected[code], reason: message }, 'disablement request refused');
    }
    return fail(code, message);
  }

  function persist(): void {
    inForceCache = undefined;
    if (!started || saveQueued) return;
    saveQueued = true;
    saveChain = saveChain
      .then(async () => {
        saveQueued = false;
        // The state file holds every change journaled so far: once it is on disk, the journal may
        // empty what InfluxDB has (journal-writer.ts `cover`). Before, a disablement ended just
        // before a crash, sent to InfluxDB, emptied from the journal and not yet in this file came
        // back in force after a restart with InfluxDB down: the detector stayed disabled.
        const mark = writer?.coverMark();
        const file: StateFile = {
          version: STATE_VERSION,
          savedAt: clock.now(),
          disablements: [...all.values()],
          audit: [...audits.values()].flat(),
          held: [...held].map(([key, h]) => ({ key, ...h })),
        };
        await writeTextAtomic(deps.statePath, JSON.stringify(file));
        saveFailing = false;
        if (mark !== undefined) writer?.covered(mark);
      })
      .catch((err: unknown) => {
        saveFailing = true;
        log.error({ err, code: 'ALERTS_PERSIST_FAILED', path: deps.statePath }, 'could not save the disablements state file');
      });
  }

  function record(d: Disablement, entries: readonly DisablementAuditEntry[]): void {
    all.set(d.id, d);
    const trail = audits.get(d.id) ?? [];
    trail.push(...entries);
    if (trail.length > MAX_AUDIT_IN_MEMORY) trail.splice(1, trail.length - MAX_AUDIT_IN_MEMORY); // keep `created`
    audits.set(d.id, trail);
    try {
      writer?.append([{ lp: disablementLine(d, clock.now()), meta: { kind: 'disablement', d } }, ...entries.map((e): JournalRecord<Meta> => ({ lp: disablementAuditLine(e), meta: { kind: 'audit', e } }))]);
    } catch (err) {
      log.error({ err, code: 'ALERTS_PERSIST_FAILED', disablementId: d.id }, 'could not journal a disablement change');
    }
    persist();
    try {
      deps.onChange?.(d);
    } catch (err) {
      log.error({ err, code: 'ALERTS_SOCKET_FAILED', disablementId: d.id }, 'could not publish a disablement change');
    }
  }

  function entry(d: Disablement, action: DisablementAuditAction, by: string, extra: Partial<DisablementAuditEntry> = {}): DisablementAuditEntry {
    const trail = audits.get(d.id) ?? [];
    const seq = (trail.at(-1)?.seq ?? 0) + 1;
    return { disablementId: d.id, homeId: d.homeId, seq, ts: clock.now(), action, by, ...extra };
  }

  function signalFields(s: Signal): Partial<DisablementAuditEntry> {
    return { key: s.key, rule: s.rule, signal: s.signal, sourceTs: s.sourceTs, ...(s.deviceId !== undefined ? { deviceId: s.deviceId } : {}), ...(s.roomId !== undefined ? { roomId: s.roomId } : {}) };
  }

  function prune(): void {
    const cutoff = clock.now() - RECENT_ENDED_MS;
    const ended = [...all.values()].filter((d) => d.endedAt !== undefined).sort((a, b) => (b.endedAt ?? 0) - (a.endedAt ?? 0));
    ended.forEach((d, i) => {
      if (i >= MAX_ENDED_KEPT || (d.endedAt ?? 0) < cutoff) {
        all.delete(d.id);
        audits.delete(d.id);
      }
    });
  }

  function arm(d: Disablement): void {
    const prior = timers.get(d.id);
    if (prior !== undefined) clock.clearTimeout(prior);
    timers.set(
      d.id,
      clock.setTimeout(() => {
        timers.delete(d.id);
        if (!closed) finish(d.id, SYSTEM_ACTOR, 'expired');
      }, Math.max(0, d.until - clock.now())),
    );
  }

  /** Ends a disablement (by a person or by itself) and releases the conditions it held that are still active. */
  function finish(id: string, by: string, action: 'expired' | 'ended_by_person'): Disablement | undefined {
    const d = all.get(id);
    if (d === undefined || d.endedAt !== undefined) return undefined;
    const timer = timers.get(id);
    if (timer !== undefined) clock.clearTimeout(timer);
    timers.delete(id);
    // One that expired while the process was down ended at its `until`, not when we noticed.
    const endedAt = action === 'expired' ? Math.min(d.until, clock.now()) : clock.now();
    const ended: Disablement = { ...d, endedAt, endedBy: by, version: d.version + 1 };
    record(ended, [entry(d, action, by, action === 'expired' ? { reason: 'ended by itself at its end time' } : {})]);
    release();
    prune();
    persist();
    log.info({ disablementId: id, homeId: d.homeId, scope: d.scope, targetId: d.targetId, by, action }, 'disablement ended');
    return ended;
  }

  /** Held conditions whose disablement is no longer in force: taken over by another, or raised now. */
  function release(): void {
    if (held.size === 0) return;
    const { release: out, reassign } = releaseHeld(held, inForceNow(), registry, clock.now());
    for (const [key, h] of reassign) held.set(key, h);
    if (out.length === 0) {
      if (reassign.size > 0) persist();
      return;
    }
    for (const h of out) held.delete(h.signal.key);
    persist();
    for (const h of out) {
      const d = all.get(h.disablementId);
      // Its own disablement may still be in force: a confirmed fire released because one of the
      // detectors it stands for is back in service (core.ts releaseHeld).
      const why = d !== undefined && isInForce(d, clock.now()) ? 'a detector it stands for is back in service: raised now' : 'still active when the disablement ended: raised now';
      if (d !== undefined) record(d, [entry(d, 'signal_released', SYSTEM_ACTOR, { ...signalFields(h.signal), reason: why })]);
    }
    try {
      deps.onRelease?.(out.map((h) => h.signal));
    } catch (err) {
      log.error({ err, code: 'ALERTS_SIGNAL_FAILED' }, 'could not raise the conditions held by an ended disablement');
    }
  }

  async function restore(): Promise<void> {
    const consider = (d: Disablement | undefined): void => {
      if (d === undefined || typeof d.id !== 'string') return;
      const prior = all.get(d.id);
      if (prior === undefined || prior.version < d.version) all.set(d.id, d);
    };
    const trail = new Map<string, DisablementAuditEntry>();
    const addAudit = (e: DisablementAuditEntry | undefined): void => {
      if (e !== undefined && typeof e.disablementId === 'string') trail.set(`${e.disablementId}#${e.seq}`, e);
    };
    let file: StateFile | undefined;
    try {
      const raw = (await readJson(deps.statePath)) as StateFile | undefined;
      if (raw !== undefined && (raw.version !== STATE_VERSION || !Array.isArray(raw.disablements))) throw new Error('unknown disablements state format');
      file = raw;
    } catch (err) {
      log.error({ err, code: 'ALERTS_SNAPSHOT_UNREADABLE', path: deps.statePath }, 'ignoring the disablements state file; restoring from InfluxDB');
    }
    for (const d of file?.disablements ?? []) consider(d);
    for (const e of file?.audit ?? []) addAudit(e);
    if (influx !== undefined) {
      const since = Math.max(0, Math.trunc(clock.now() - MAX_DISABLEMENT_MS - RECENT_ENDED_MS));
      try {
        for (const r of rows(await influx.reader.series(`SELECT "json" FROM "disablement" WHERE time >= ${since}ms`))) consider(parse<Disablement>(r.json));
        for (const r of rows(await influx.reader.series(`SELECT "json" FROM "disablement_audit" WHERE time >= ${since}ms`))) addAudit(parse<DisablementAuditEntry>(r.json));
      } catch (err) {
        log.error({ err, code: 'ALERTS_RESTORE_FAILED' }, 'could not read disablements from InfluxDB; using the state file');
      }
    }
    for (const rec of writer?.pending() ?? []) {
      if (rec.meta?.kind === 'disablement') consider(rec.meta.d);
      else if (rec.meta?.kind === 'audit') addAudit(rec.meta.e);
    }
    for (const e of [...trail.values()].sort((a, b) => a.seq - b.seq)) {
      if (!all.has(e.disablementId)) continue;
      const list = audits.get(e.disablementId) ?? [];
      list.push(e);
      audits.set(e.disablementId, list);
    }
    for (const h of [...(file?.held ?? []), ...adopted]) {
      const d = all.get(h.disablementId);
      if (d === undefined || typeof h.key !== 'string' || h.signal?.active !== true) continue;
      if (deps.owns !== undefined && !deps.owns(h.signal.homeId)) continue;
      held.set(h.key, { disablementId: h.disablementId, signal: h.signal });
    }
    inForceCache = undefined;
  }

  return {
    heldOf: (homeId) => [...held].filter(([, h]) => h.signal.homeId === homeId).map(([key, h]) => ({ key, ...h })),
    adoptHeld(entries) {
      if (started) throw new Error('held conditions are adopted before start');
      adopted.push(...entries);
    },
    async start() {
      if (started) throw new Error('disablements already started');
      if (influx !== undefined) {
        try {
          await influx.ensureDatabase();
        } catch (err) {
          log.warn({ err, code: 'ALERTS_INFLUX_UNREACHABLE' }, 'could not create the InfluxDB database; disablement history stays in the journal');
        }
      }
      await writer?.start();
      await restore();
      started = true;
      const now = clock.now();
      const restored = inForceNow();
      for (const d of restored) {
        if (isInForce(d, now)) arm(d);
      }
      // Those whose end time passed while the process was down end now (at their `until`).
      for (const d of restored) if (!isInForce(d, now) && d.startedAt <= now) finish(d.id, SYSTEM_ACTOR, 'expired');
      release();
      prune();
      persist();
      log.info({ inForce: inForceNow().length, held: held.size }, 'disablements restored');
    },

    filter(signals) {
      if (signals.length === 0 || (held.size === 0 && inForceNow().length === 0)) return signals;
      try {
        const r = filterSignals(signals, inForceNow(), held, registry, clock.now());
        if (r.suppressed.length === 0 && r.forget.size === 0) return signals;
        for (const key of r.forget) held.delete(key);
        for (const [key, h] of r.hold) held.set(key, h);
        for (const s of r.suppressed) {
          if (!s.onset) continue;
          suppressedTotal++;
          const d = all.get(s.by.id) ?? s.by;
          record({ ...d, suppressedSignals: d.suppressedSignals + 1, version: d.version + 1 }, [entry(d, 'signal_suppressed', SYSTEM_ACTOR, signalFields(s.signal))]);
          log.info({ disablementId: d.id, key: s.signal.key, rule: s.signal.rule, deviceId: s.signal.deviceId }, 'signal suppressed by a disablement');
        }
        persist();
        return r.pass;
      } catch (err) {
        // Fail open: a fault here must never swallow an alarm.
        log.error({ err, code: 'ALERTS_SIGNAL_FAILED' }, 'disablement filter failed; passing the signals on');
        return signals;
      }
    },

    create(actor, homeId, req) {
      const may = mayManage(actor, homeId);
      if (!may.ok) return reject(may.code, actor, may.message);
      const ok = checkRequest(req, homeId, registry);
      if (!ok.ok) return reject(ok.code, actor, ok.message);
      if (inForceNow().filter((d) => d.homeId === homeId).length >= MAX_IN_FORCE_PER_HOME) return reject('DISABLEMENT_LIMIT', actor);
      const now = clock.now();
      const d: Disablement = {
        id: newId(),
        homeId,
        scope: req.scope,
        targetId: req.targetId,
        mode: req.mode,
        reason: req.reason.trim(),
        by: actor.username,
        startedAt: now,
        until: now + req.durationMin * 60_000,
        suppressedSignals: 0,
        version: 1,
      };
      record(d, [{ disablementId: d.id, homeId, seq: 1, ts: now, action: 'created', by: actor.username, reason: d.reason }]);
      arm(d);
      log.info({ disablementId: d.id, homeId, scope: d.scope, targetId: d.targetId, mode: d.mode, until: d.until, by: actor.username }, 'disablement created');
      return { ok: true, value: d };
    },

    end(actor, id) {
      const d = all.get(id);
      if (d === undefined || !canSeeHome(actor, d.homeId)) return reject('DISABLEMENT_NOT_FOUND', actor);
      const may = mayManage(actor, d.homeId);
      if (!may.ok) return reject(may.code, actor, may.message);
      if (d.endedAt !== undefined) return reject('DISABLEMENT_ENDED', actor, `ended at ${new Date(d.endedAt).toISOString()} by ${d.endedBy ?? '?'}`);
      const ended = finish(id, actor.username, 'ended_by_person');
      return ended === undefined ? reject('DISABLEMENT_ENDED', actor) : { ok: true, value: ended };
    },

    inForce: (homeId) => inForceNow().filter((d) => homeId === undefined || d.homeId === homeId),

    visibleTo(actor, opts = {}) {
      const source = opts.includeEnded === true ? [...all.values()] : inForceNow();
      return source
        .filter((d) => canSeeHome(actor, d.homeId) && (opts.homeId === undefined || d.homeId === opts.homeId))
        .sort((a, b) => b.startedAt - a.startedAt);
    },

    async find(actor, id) {
      let d = all.get(id);
      let trail = audits.get(id);
      if (d === undefined && influx !== undefined) {
        const series = await influx.reader.series(`SELECT "json" FROM "disablement" WHERE "disablement_id" = ${quote(id)}`);
        for (const r of rows(series)) {
          const x = parse<Disablement>(r.json);
          if (x !== undefined && (d === undefined || x.version > d.version)) d = x;
        }
        if (d !== undefined) {
          const found = new Map<number, DisablementAuditEntry>();
          for (const r of rows(await influx.reader.series(`SELECT "json" FROM "disablement_audit" WHERE "disablement_id" = ${quote(id)}`))) {
            const e = parse<DisablementAuditEntry>(r.json);
            if (e !== undefined) found.set(e.seq, e);
          }
          trail = [...found.values()].sort((a, b) => a.seq - b.seq);
        }
      }
      // Another home's is "not found": its existence is not disclosed.
      if (d === undefined || !canSeeHome(actor, d.homeId)) return fail('DISABLEMENT_NOT_FOUND');
      return { ok: true, value: { disablement: d, audit: trail ?? [] } };
    },

    drained: () => writer?.drained() ?? Promise.resolve(),

    stats() {
      const points = new Set<string>();
      for (const d of inForceNow()) for (const dev of coveredDevices(d, registry)) points.add(dev.id);
      const journal = writer?.stats();
      return {
        inForce: inForceNow().length,
        disabledPoints: points.size,
        held: held.size,
        suppressed: suppressedTotal,
        rejected: { ...rejected },
        ...(journal !== undefined ? { journal } : {}),
        problems: [...(journal?.problems ?? []), ...(saveFailing ? ['ALERTS_DISABLEMENTS_STATE_IO'] : [])],
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers.values()) clock.clearTimeout(t);
      timers.clear();
      if (started) persist();
      await saveChain;
      await writer?.close();
      if (deps.history !== undefined && deps.history.influx === undefined) influx?.close();
    },
  };
}
