import { BUREAU_LEVEL } from '../access.ts';
import type { Repeat, RoutedChannel } from './config.ts';

/**
 * Who to page now and when to decide again (issue 15, "keep trying until someone answers"): a pure
 * function of the previous paging state and what the incident, routes and rosters look like now.
 * No clock read, no I/O: the notifier (notifier.ts) builds the view, sends the pages and arms one
 * timer at `wakeAt`.
 *
 * - A new alerting period pages every level up to the incident's; an escalation every level above
 *   the highest already paged.
 * - The *target* level (the incident's, or the highest routed one below it) is re-paged on each
 *   channel every `repeat.everyS` (at most `repeat.max` times) while nobody has acknowledged;
 *   at the bureau (the last rung) it keeps repeating rather than going silent.
 * - A routed level with nobody on duty is passed over at once to the next routed level (the
 *   escalation ladder's own deadline would otherwise leave the alarm with nobody for 15 s … 4 h).
 * - At a shift change the incoming level-0 people are paged (the outgoing ones were told already).
 * - Acknowledged: no repeat, no jump, no shift page; only a later escalation pages (NFPA 72
 *   §23.8.1.3: an acknowledged fire left unconfirmed past 180 s goes to the bureau). Such a page is
 *   owed until delivered: the notifier sends a failed one again, and at start `owedPages` names
 *   the ones cut short or failed.
 */

export interface LevelView {
  /** The channels routed at this level for this incident (scopes applied), with their repeat. */
  readonly channels: readonly RoutedChannel[];
  /** Someone on duty at this level by the roster (level 0: the shift; 1: directors/managers; 2: bureau). */
  readonly staffed: boolean;
}

export interface PageView {
  readonly now: number;
  /** The incident's escalation level. */
  readonly level: number;
  readonly acknowledged: boolean;
  /** Resolved, or held-back points only: nothing is paged. */
  readonly silent: boolean;
  /** Index = ladder level, 0 … BUREAU_LEVEL. */
  readonly levels: readonly LevelView[];
  /** The ids of the people on duty at level 0 now. */
  readonly onDuty: readonly string[];
  /** The next shift boundary of the level-0 roster. */
  readonly shiftChangeAt?: number;
}

export interface ChannelMark {
  /** When the target level was last paged on this channel. */
  readonly at: number;
  /** Repeats so far at this level (the first page is not one). */
  readonly repeats: number;
}

export interface PageState {
  /** Highest level paged in this alerting period. */
  readonly notified: number;
  /** The level being repeated. */
  readonly target: number;
  /** Per channel of the target level; a channel without a mark has not been paged (or its page was lost): due now. */
  readonly marks: Readonly<Record<string, ChannelMark>>;
  /** Level-0 people told in this alerting period. */
  readonly told: readonly string[];
}

export type PageReason = 'opened' | 'escalated' | 'realerted' | 'empty_level' | 'repeat' | 'shift_change' | 'resumed';

export interface Page {
  readonly level: number;
  readonly reason: PageReason;
  /** Only these channels (a repeat: the ones due); absent = every channel of the level. */
  readonly channels?: readonly string[];
  /** Only these level-0 people (a shift change: the incoming ones); absent = everyone the level addresses. */
  readonly people?: readonly string[];
}

export interface Jump {
  readonly from: number;
  readonly to: number;
}

export interface PageDecision {
  readonly pages: readonly Page[];
  /** Routed levels with nobody on duty, passed over at once (audited by the notifier). */
  readonly jumps: readonly Jump[];
  /** Undefined until the incident first pages (held-back points only). */
  readonly state: PageState | undefined;
  /** When to decide again; undefined: only the next incident change. */
  readonly wakeAt?: number;
}

export interface DecideOptions {
  /** A new alarm point on an acknowledged incident: level 0 and the current level again, a new period. */
  readonly realert?: boolean;
}

const routed = (v: PageView, l: number): boolean => (v.levels[l]?.channels.length ?? 0) > 0;
const staffed = (v: PageView, l: number): boolean => v.levels[l]?.staffed ?? false;

/** The highest routed level at or below `l`, else the lowest above; `l` itself when none is routed. */
function routedTarget(v: PageView, l: number): number {
  for (let x = Math.min(l, BUREAU_LEVEL); x >= 0; x--) if (routed(v, x)) return x;
  for (let x = l + 1; x <= BUREAU_LEVEL; x++) if (routed(v, x)) return x;
  return l;
}

function nextRouted(v: PageView, l: number): number | undefined {
  for (let x = l + 1; x <= BUREAU_LEVEL; x++) if (routed(v, x)) return x;
  return undefined;
}

function dueAt(mark: ChannelMark | undefined, repeat: Repeat | undefined): number | undefined {
  if (mark === undefined) return -Infinity;
  if (repeat === undefined || (repeat.max !== undefined && mark.repeats >= repeat.max)) return undefined;
  return mark.at + repeat.everyS * 1000;
}

export function decidePages(prev: PageState | undefined, v: PageView, opts: DecideOptions = {}): PageDecision {
  if (v.silent) return { pages: [], jumps: [], state: prev };
  const pages: Page[] = [];
  const jumps: Jump[] = [];
  const fresh = prev === undefined || opts.realert === true;
  let notified = prev === undefined ? -1 : prev.notified;
  let target = prev?.target ?? 0;
  let marks: Record<string, ChannelMark> = fresh ? {} : { ...prev?.marks };
  // A mark in the future: the wall clock was stepped back since (marks are made at `now`; NTP, an
  // operator). It counts as made now, so the next repeat is at most one period away, not the size of
  // the step: until session 23 a 1 h step silenced an unanswered call's repeats for an hour
  // (test/alerts/notify/clock-step-repeat.test.ts). Its timer runs on elapsed time meanwhile.
  for (const [channel, m] of Object.entries(marks)) if (m.at > v.now) marks[channel] = { ...m, at: v.now };
  let told = new Set(fresh ? [] : (prev?.told ?? []));
  const paged = new Set<number>();
  const page = (level: number, reason: PageReason): void => {
    pages.push({ level, reason });
    paged.add(level);
  };

  if (prev === undefined) {
    for (let l = 0; l <= v.level; l++) page(l, 'opened');
  } else if (opts.realert === true) {
    page(0, 'realerted');
    if (v.level > 0) page(v.level, 'realerted');
  } else {
    // Nothing paged yet (resumed at start with no page in its audit): it opens now.
    for (let l = notified + 1; l <= v.level; l++) page(l, notified < 0 ? 'opened' : 'escalated');
  }
  notified = Math.max(notified, v.level);

  const before = target;
  target = routedTarget(v, Math.max(fresh ? v.level : target, v.level));
  if (!v.acknowledged) {
    // Nobody on duty at the target: the next routed level at once, as often as needed.
    for (;;) {
      if (!routed(v, target) || staffed(v, target)) break;
      const next = nextRouted(v, target);
      if (next === undefined) break; // the bureau: repeated there, group chats still posted to
      jumps.push({ from: target, to: next });
      target = next;
      if (!paged.has(target) && target > notified) page(target, 'empty_level');
    }
  }
  notified = Math.max(notified, target);
  const targetChannels = v.levels[target]?.channels ?? [];
  if (fresh || target !== before) marks = {};
  if (paged.has(target)) for (const c of targetChannels) marks[c.channel] = { at: v.now, repeats: 0 };
  if (paged.has(0)) for (const p of v.onDuty) told.add(p);

  if (v.acknowledged) {
    // Only escalations page an acknowledged incident; nothing repeats.
    return { pages, jumps, state: { notified, target, marks, told: [...told] } };
  }

  // Repeats of the target level: each channel on its own period; a channel never paged is due now.
  if (!paged.has(target)) {
    const due: string[] = [];
    for (const c of targetChannels) {
      const at = dueAt(marks[c.channel], c.repeat);
      if (at !== undefined && at <= v.now) {
        due.push(c.channel);
        const m = marks[c.channel];
        marks[c.channel] = { at: v.now, repeats: m === undefined ? 0 : m.repeats + 1 };
      }
    }
    if (due.length > 0) {
      pages.push({ level: target, reason: 'repeat', channels: due });
      if (target === 0) for (const p of v.onDuty) told.add(p);
    }
  }

  // A shift change: the incoming level-0 people hear of the alarm still open.
  const incoming = v.onDuty.filter((p) => !told.has(p));
  if (incoming.length > 0 && routed(v, 0)) {
    pages.push({ level: 0, reason: 'shift_change', people: incoming });
    for (const p of incoming) told.add(p);
  }

  let wakeAt: number | undefined;
  for (const c of targetChannels) {
    const at = dueAt(marks[c.channel], c.repeat);
    if (at !== undefined && (wakeAt === undefined || at < wakeAt)) wakeAt = at;
  }
  if (routed(v, 0) && v.shiftChangeAt !== undefined && v.shiftChangeAt > v.now && (wakeAt === undefined || v.shiftChangeAt < wakeAt)) wakeAt = v.shiftChangeAt;
  return { pages, jumps, state: { notified, target, marks, told: [...told] }, ...(wakeAt !== undefined ? { wakeAt } : {}) };
}

/** A notification attempt as the incident's audit recorded it. */
export interface NotifyRecord {
  readonly ts: number;
  readonly level: number;
  readonly channel?: string;
  readonly recipient?: string;
  readonly attempt?: number;
  readonly status?: string;
}

/** Not delivered, and not given up for a reason a resend cannot change (`no_address`, `no_recipient`). */
const undelivered = (r: NotifyRecord): boolean => r.status === 'retrying' || r.status === 'cancelled' || r.status === 'failed';

/** The latest record per recipient of one level and channel. */
function latestByRecipient(records: readonly NotifyRecord[], level: number, channel: string): Map<string, NotifyRecord> {
  const latest = new Map<string, NotifyRecord>();
  for (const r of records) {
    if (r.level !== level || r.channel !== channel) continue;
    const prior = latest.get(r.recipient ?? '');
    if (prior === undefined || r.ts >= prior.ts) latest.set(r.recipient ?? '', r);
  }
  return latest;
}

/**
 * The paging state of an incident restored at start (a restart, or a home taken over from another
 * instance), rebuilt from its audit so nothing is sent twice in the normal case: a channel whose
 * last page at the target level is recent waits for its repeat; one never paged there, or whose
 * page was cut short (last attempt `retrying`, or `cancelled` at shutdown) or given up (`failed`),
 * is due at once.
 *
 * `notified` is the highest level its audit shows paged, not the incident's level: an incident that
 * escalated while alerts was down (or before the notifier started) pages every rung it skipped, as a
 * live escalation does (it used to page only the target rung: a fire that reached the bureau during
 * a restart never told the director, and one opened at start at level 2 never told the duty staff;
 * test/alerts/notify/restart-catch-up.test.ts). `answered`: the level the incident stood at when acknowledged (everything up to
 * it was answered then), -1 when unacknowledged.
 */
export function resumeState(v: PageView, records: readonly NotifyRecord[], answered = -1): PageState {
  const top = records.reduce((m, r) => Math.max(m, r.level), answered);
  const target = routedTarget(v, Math.max(top, v.level));
  const marks: Record<string, ChannelMark> = {};
  for (const c of v.levels[target]?.channels ?? []) {
    const latest = latestByRecipient(records, target, c.channel);
    if (latest.size === 0 || [...latest.values()].some(undelivered)) continue;
    // A page starts with attempt 1 (a person without an address is recorded without attempts).
    const starts = records.filter((r) => r.level === target && r.channel === c.channel && (r.attempt === 1 || r.attempt === undefined)).map((r) => r.ts);
    const pageTimes = [...new Set(starts)];
    marks[c.channel] = { at: Math.max(...starts), repeats: Math.max(0, pageTimes.length - 1) };
  }
  const personal = records.filter((r) => r.level === 0 && r.recipient !== undefined && r.recipient !== 'group').map((r) => r.recipient as string);
  return { notified: top, target, marks, told: personal.length > 0 ? [...new Set(personal)] : [...v.onDuty] };
}

/**
 * Pages still owed at start, sent again at once: at each level above `answered` (see resumeState)
 * that was paged, each channel whose latest attempt to someone was cut short or given up
 * (`retrying`, `cancelled`, `failed`), to those people only (the whole channel for a group robot).
 * `records` are the current alerting period's (since the acknowledgement or the re-alert). The target
 * level of an unacknowledged incident is left to its repeats (resumeState's marks).
 */
export function owedPages(v: PageView, state: PageState, records: readonly NotifyRecord[], answered = -1): Page[] {
  const pages: Page[] = [];
  for (let level = answered + 1; level <= state.notified; level++) {
    if (!v.acknowledged && level === state.target) continue;
    for (const c of v.levels[level]?.channels ?? []) {
      const owed = [...latestByRecipient(records, level, c.channel).entries()].filter(([, r]) => undelivered(r)).map(([who]) => who);
      if (owed.length === 0) continue;
      const group = owed.some((who) => who === 'group' || who === '');
      pages.push({ level, reason: 'resumed', channels: [c.channel], ...(group ? {} : { people: owed }) });
    }
  }
  return pages;
}
