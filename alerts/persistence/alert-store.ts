import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { AlertMessage } from '../../contract/payloads.ts';
import type { IncidentMessage } from '../../contract/incidents.ts';
import type { IncidentAuditEntry, IncidentChange, StoredIncident } from '../incidents/book.ts';
import type { AlertChange, AuditEntry, StoredAlert } from '../lifecycle.ts';
import { openInfluxDatabase, type InfluxDatabase } from '../../common/influx/database.ts';
import { allRows as rows } from '../../common/influx/reader.ts';
import { createJournalWriter, type JournalRecord, type JournalStats, type JournalWriter, type JournalWriterDeps } from './journal-writer.ts';
import { fnv1a, nsTime, toLine } from '../../common/influx/line-protocol.ts';

/**
 * Alerts in InfluxDB (docs/architecture.md schema):
 *   alert        tags home, category, rule, state, alert_id   fields id, version, json (the AlertMessage), key, latching
 * The alert_id tag (added later; older points lack it) lets GET /api/alerts/:id look one alert up
 * through the series index instead of scanning every `alert` point for a field value. It is one
 * series per alert: fine at care-home alert rates (thousands a year), not for per-reading data.
 *   alert_audit  tags home, action                  fields alert_id, seq, json (the AuditEntry)
 *   care_action  tags home, resident, action        fields by, json
 *   incident        tags home, kind, state, incident_id   fields id, version, json (the IncidentMessage), key, alerted_at
 *   incident_audit  tags home, action                     fields incident_id, seq, json (the IncidentAuditEntry)
 * Incidents (issue 11) are stored exactly as alerts are: journaled first, never dropped, restored at start.
 * Point times are the change time in ms plus a sub-ms offset from the alert id and version (or
 * audit seq), so two alerts changing in the same millisecond never overwrite each other, and a
 * replayed journal record overwrites only itself.
 */
export type StoreMeta =
  | { kind: 'alert'; stored: StoredAlert }
  | { kind: 'audit'; entry: AuditEntry }
  | { kind: 'incident'; stored: StoredIncident }
  | { kind: 'incident_audit'; entry: IncidentAuditEntry }
  | { kind: 'other' };

export interface CareActionRecord {
  readonly homeId: string;
  readonly residentId: string;
  readonly action: string;
  readonly by: string;
  readonly ts: number;
  readonly observation?: unknown;
}

export interface AlertStore {
  start(): Promise<void>;
  record(change: AlertChange): void;
  recordCareAction(a: CareActionRecord): void;
  /** Issue 11: an incident change and its audit entry, journaled like an alert change. */
  recordIncident(change: IncidentChange): void;
  /** Latest version of every incident changed since `sinceMs` that is still open, with their audit; `resolved` as loadOpen's. */
  loadOpenIncidents(sinceMs: number): Promise<{ incidents: StoredIncident[]; audit: IncidentAuditEntry[]; resolved: ReadonlyMap<string, number>; influxError?: unknown }>;
  /** Latest stored version of one incident and its audit trail (resolved ones no longer in memory). */
  latestIncident(incidentId: string): Promise<{ incident: IncidentMessage; audit: IncidentAuditEntry[] } | undefined>;
  /**
   * Latest version of every alert changed since `sinceMs`, merged with the unsent journal. InfluxDB
   * unreachable: the journal's alone, with `influxError` (the journal holds exactly what InfluxDB has
   * not got yet, e.g. an alarm raised and acknowledged to the broker just before a crash).
   * `resolved`: the version at which each alert whose latest stored change is its resolution was
   * resolved, so that an older open copy (the rule-state snapshot's) does not bring it back.
   */
  loadOpen(sinceMs: number): Promise<{ alerts: StoredAlert[]; audit: AuditEntry[]; resolved: ReadonlyMap<string, number>; influxError?: unknown }>;
  /** The audit trail of one alert, or of one home (issue 3: queryable per alert and per home). */
  audit(filter: { alertId?: string; homeId?: string; sinceMs?: number; limit?: number }): Promise<AuditEntry[]>;
  /** Latest stored version of one alert (for resolved alerts no longer in memory). */
  latest(alertId: string): Promise<AlertMessage | undefined>;
  drained(): Promise<void>;
  /** Undefined when every recorded change is fsynced in the journal, else a promise of it. */
  synced(): Promise<void> | undefined;
  /** JournalWriter.coverMark / covered: the snapshot's side of the journal's cover. */
  coverMark(): number;
  covered(mark: number): void;
  stats(): JournalStats;
  close(): Promise<void>;
}

export interface AlertStoreDeps {
  readonly influxUrl: string;
  readonly database: string;
  readonly journalPath: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The process's adapter (common/influx/database.ts); absent: the store opens (and closes) its own. */
  readonly influx?: InfluxDatabase;
  /** Journal bounds and file access (see JournalWriterDeps). */
  readonly journal?: Pick<JournalWriterDeps<StoreMeta>, 'maxPending' | 'maxFileBytes' | 'openFile'>;
  /** The journal keeps alert changes until a durable snapshot holds them too (JournalWriterDeps.cover). */
  readonly cover?: JournalWriterDeps<StoreMeta>['cover'];
  /** How far back a lookup of an alert id scans points written before the alert_id tag existed (default 7 days). */
  readonly legacyLookupMs?: number;
}

/** Alert changes and their audit are never dropped at the journal's bound; care actions may be. */
const isAlertRecord = (r: JournalRecord<StoreMeta>): boolean => r.meta !== undefined && r.meta.kind !== 'other';

const quoteString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export function alertRecord(s: StoredAlert): JournalRecord<StoreMeta> {
  const a = s.alert;
  const lp = toLine({
    measurement: 'alert',
    tags: { home: a.homeId, category: a.category, rule: a.rule, state: a.state, alert_id: a.id },
    fields: { id: a.id, version: { int: a.version }, json: JSON.stringify(a), key: s.key, latching: s.latching },
    timeNs: nsTime(a.ts, (fnv1a(a.id) % 1000) * 1000 + (a.version % 1000)),
  });
  return { lp, meta: { kind: 'alert', stored: s } };
}

export function auditRecord(e: AuditEntry): JournalRecord<StoreMeta> {
  const lp = toLine({
    measurement: 'alert_audit',
    tags: { home: e.homeId, action: e.action },
    fields: { alert_id: e.alertId, seq: { int: e.seq }, json: JSON.stringify(e) },
    timeNs: nsTime(e.ts, (fnv1a(e.alertId) % 1000) * 1000 + (e.seq % 1000)),
  });
  return { lp, meta: { kind: 'audit', entry: e } };
}

export function incidentRecord(s: StoredIncident): JournalRecord<StoreMeta> {
  const i = s.incident;
  const lp = toLine({
    measurement: 'incident',
    tags: { home: i.homeId, kind: i.kind, state: i.state, incident_id: i.id },
    fields: { id: i.id, version: { int: i.version }, json: JSON.stringify(i), key: s.key, alerted_at: { int: s.alertedAt } },
    timeNs: nsTime(i.ts, (fnv1a(i.id) % 1000) * 1000 + (i.version % 1000)),
  });
  return { lp, meta: { kind: 'incident', stored: s } };
}

export function incidentAuditRecord(e: IncidentAuditEntry): JournalRecord<StoreMeta> {
  const lp = toLine({
    measurement: 'incident_audit',
    tags: { home: e.homeId, action: e.action },
    fields: { incident_id: e.incidentId, seq: { int: e.seq }, json: JSON.stringify(e) },
    timeNs: nsTime(e.ts, (fnv1a(e.incidentId) % 1000) * 1000 + (e.seq % 1000)),
  });
  return { lp, meta: { kind: 'incident_audit', entry: e } };
}

function parseJson<T>(v: unknown): T | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    return JSON.parse(v) as T;
  } catch {
    return undefined;
  }
}

/**
 * The latest stored versions split into the open ones and, by id, the version of each resolution
 * (loadOpen's `resolved`: an older open copy elsewhere must not bring the alert or incident back).
 */
function splitResolved<T>(latest: Iterable<T>, message: (s: T) => { readonly id: string; readonly version: number; readonly state: string }): { open: T[]; resolved: Map<string, number> } {
  const open: T[] = [];
  const resolved = new Map<string, number>();
  for (const s of latest) {
    const m = message(s);
    if (m.state === 'resolved') resolved.set(m.id, m.version);
    else open.push(s);
  }
  return { open, resolved };
}

export function createAlertStore(deps: AlertStoreDeps): AlertStore {
  const influx = deps.influx ?? openInfluxDatabase({ url: deps.influxUrl, database: deps.database });
  const writer: JournalWriter<StoreMeta> = createJournalWriter<StoreMeta>({
    path: deps.journalPath,
    influx,
    clock: deps.clock,
    logger: deps.logger,
    essential: isAlertRecord,
    ...deps.journal,
    ...(deps.cover !== undefined ? { cover: deps.cover } : {}),
  });
  let careSeq = 0;

  return {
    async start() {
      try {
        await influx.ensureDatabase();
      } catch (err) {
        deps.logger.warn({ err, code: 'ALERTS_INFLUX_UNREACHABLE' }, 'could not create the InfluxDB database; writes stay in the journal');
      }
      await writer.start();
    },
    record(change) {
      const recs = [auditRecord(change.audit)];
      if (change.changed) recs.unshift(alertRecord(change));
      writer.append(recs);
    },
    recordIncident(change) {
      const recs = [incidentAuditRecord(change.audit)];
      if (change.changed) recs.unshift(incidentRecord(change));
      writer.append(recs);
    },
    async loadOpenIncidents(sinceMs) {
      const latest = new Map<string, StoredIncident>();
      const consider = (s: StoredIncident): void => {
        const prior = latest.get(s.incident.id);
        if (prior === undefined || prior.incident.version < s.incident.version) latest.set(s.incident.id, s);
      };
      const since = Math.max(0, Math.trunc(sinceMs));
      let influxError: unknown;
      const series = await influx.reader.series(`SELECT "json","key","alerted_at" FROM "incident" WHERE time >= ${since}ms`).catch((err: unknown) => {
        influxError = err;
        return [];
      });
      for (const r of rows(series)) {
        const incident = parseJson<IncidentMessage>(r.json);
        if (incident === undefined || typeof r.key !== 'string') continue;
        consider({ incident, key: r.key, alertedAt: typeof r.alerted_at === 'number' ? r.alerted_at : incident.openedAt });
      }
      const journalAudit: IncidentAuditEntry[] = [];
      for (const rec of writer.pending()) {
        if (rec.meta?.kind === 'incident') consider(rec.meta.stored);
        else if (rec.meta?.kind === 'incident_audit') journalAudit.push(rec.meta.entry);
      }
      const { open: incidents, resolved } = splitResolved(latest.values(), (s) => s.incident);
      const openIds = new Set(incidents.map((s) => s.incident.id));
      const audit = new Map<string, IncidentAuditEntry>();
      const auditSeries = openIds.size === 0 || influxError !== undefined ? [] : await influx.reader.series(`SELECT "json" FROM "incident_audit" WHERE time >= ${since}ms`);
      for (const r of rows(auditSeries)) {
        const e = parseJson<IncidentAuditEntry>(r.json);
        if (e && openIds.has(e.incidentId)) audit.set(`${e.incidentId}#${e.seq}`, e);
      }
      for (const e of journalAudit) if (openIds.has(e.incidentId)) audit.set(`${e.incidentId}#${e.seq}`, e);
      return { incidents, audit: [...audit.values()], resolved, ...(influxError !== undefined ? { influxError } : {}) };
    },
    async latestIncident(incidentId) {
      const id = quoteString(incidentId);
      let best: IncidentMessage | undefined;
      for (const r of rows(await influx.reader.series(`SELECT "json" FROM "incident" WHERE "incident_id" = ${id} ORDER BY time DESC LIMIT 1`))) {
        const i = parseJson<IncidentMessage>(r.json);
        if (i && (best === undefined || i.version > best.version)) best = i;
      }
      const found = new Map<number, IncidentAuditEntry>();
      for (const r of rows(await influx.reader.series(`SELECT "json" FROM "incident_audit" WHERE "incident_id" = ${id}`))) {
        const e = parseJson<IncidentAuditEntry>(r.json);
        if (e) found.set(e.seq, e);
      }
      for (const rec of writer.pending()) {
        if (rec.meta?.kind === 'incident' && rec.meta.stored.incident.id === incidentId && (best === undefined || rec.meta.stored.incident.version > best.version)) best = rec.meta.stored.incident;
        if (rec.meta?.kind === 'incident_audit' && rec.meta.entry.incidentId === incidentId) found.set(rec.meta.entry.seq, rec.meta.entry);
      }
      return best && { incident: best, audit: [...found.values()].sort((a, b) => a.seq - b.seq) };
    },
    recordCareAction(a) {
      writer.append([
        {
          lp: toLine({
            measurement: 'care_action',
            tags: { home: a.homeId, resident: a.residentId, action: a.action },
            fields: { by: a.by, json: JSON.stringify(a) },
            timeNs: nsTime(a.ts, careSeq++ % 1_000_000),
          }),
          meta: { kind: 'other' },
        },
      ]);
    },
    async loadOpen(sinceMs) {
      const latest = new Map<string, StoredAlert>();
      const consider = (s: StoredAlert): void => {
        const prior = latest.get(s.alert.id);
        if (prior === undefined || prior.alert.version < s.alert.version) latest.set(s.alert.id, s);
      };
      const since = Math.max(0, Math.trunc(sinceMs));
      let influxError: unknown;
      const series = await influx.reader.series(`SELECT "json","key","latching" FROM "alert" WHERE time >= ${since}ms`).catch((err: unknown) => {
        influxError = err;
        return [];
      });
      for (const r of rows(series)) {
        const alert = parseJson<AlertMessage>(r.json);
        if (alert === undefined || typeof r.key !== 'string') continue;
        consider({ alert, key: r.key, latching: r.latching === true });
      }
      const journalAudit: AuditEntry[] = [];
      for (const rec of writer.pending()) {
        if (rec.meta?.kind === 'alert') consider(rec.meta.stored);
        else if (rec.meta?.kind === 'audit') journalAudit.push(rec.meta.entry);
      }
      const { open: alerts, resolved } = splitResolved(latest.values(), (s) => s.alert);
      const openIds = new Set(alerts.map((s) => s.alert.id));
      const audit = new Map<string, AuditEntry>();
      const auditSeries = openIds.size === 0 || influxError !== undefined ? [] : await influx.reader.series(`SELECT "json" FROM "alert_audit" WHERE time >= ${since}ms`);
      for (const r of rows(auditSeries)) {
        const e = parseJson<AuditEntry>(r.json);
        if (e && openIds.has(e.alertId)) audit.set(`${e.alertId}#${e.seq}`, e);
      }
      for (const e of journalAudit) if (openIds.has(e.alertId)) audit.set(`${e.alertId}#${e.seq}`, e);
      return { alerts, audit: [...audit.values()], resolved, ...(influxError !== undefined ? { influxError } : {}) };
    },
    async audit(filter) {
      const where = [`time >= ${Math.max(0, Math.trunc(filter.sinceMs ?? 0))}ms`];
      if (filter.alertId !== undefined) where.push(`"alert_id" = ${quoteString(filter.alertId)}`);
      if (filter.homeId !== undefined) where.push(`"home" = ${quoteString(filter.homeId)}`);
      const limit = Math.min(10_000, Math.max(1, filter.limit ?? 1000));
      const series = await influx.reader.series(`SELECT "json" FROM "alert_audit" WHERE ${where.join(' AND ')} ORDER BY time DESC LIMIT ${limit}`);
      const found = new Map<string, AuditEntry>();
      for (const r of rows(series)) {
        const e = parseJson<AuditEntry>(r.json);
        if (e) found.set(`${e.alertId}#${e.seq}`, e);
      }
      // Entries still in the journal are part of the trail too.
      for (const rec of writer.pending()) {
        if (rec.meta?.kind !== 'audit') continue;
        const e = rec.meta.entry;
        if ((filter.alertId === undefined || e.alertId === filter.alertId) && (filter.homeId === undefined || e.homeId === filter.homeId)) found.set(`${e.alertId}#${e.seq}`, e);
      }
      return [...found.values()].sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    },
    async latest(alertId) {
      // The tag goes through the series index; only a bounded recent window is scanned for untagged (older) points.
      let series = await influx.reader.series(`SELECT "json" FROM "alert" WHERE "alert_id" = ${quoteString(alertId)} ORDER BY time DESC LIMIT 1`);
      if (rows(series).length === 0) {
        const since = Math.max(0, Math.trunc(deps.clock.now() - (deps.legacyLookupMs ?? 7 * 86_400_000)));
        series = await influx.reader.series(`SELECT "json" FROM "alert" WHERE time >= ${since}ms AND "id" = ${quoteString(alertId)} ORDER BY time DESC LIMIT 1`);
      }
      let best: AlertMessage | undefined;
      for (const r of rows(series)) {
        const a = parseJson<AlertMessage>(r.json);
        if (a && (best === undefined || a.version > best.version)) best = a;
      }
      for (const rec of writer.pending()) {
        if (rec.meta?.kind === 'alert' && rec.meta.stored.alert.id === alertId && (best === undefined || rec.meta.stored.alert.version > best.version)) best = rec.meta.stored.alert;
      }
      return best;
    },
    drained: () => writer.drained(),
    synced: () => writer.synced(),
    coverMark: () => writer.coverMark(),
    covered: (mark) => writer.covered(mark),
    stats: () => writer.stats(),
    async close() {
      await writer.close();
      if (deps.influx === undefined) influx.close();
    },
  };
}
