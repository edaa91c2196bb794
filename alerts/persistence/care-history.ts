import type { Clock, ClockTimer } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { NEWS2_PARAMETERS } from '../rules/care/news2.ts';
import type { News2Score } from '../rules/care/news2-rule.ts';
import type { InfluxHttp } from './influx-http.ts';
import { createJournalWriter, type JournalWriter } from './journal-writer.ts';
import { fnv1a, nsTime, toLine } from './line-protocol.ts';

/**
 * Per-resident NEWS2 history in InfluxDB (issue 4, "Per-resident history"):
 *   news2  tags home, resident
 *          fields aggregate (int), partial (bool), missing (string, comma-separated), risk (string),
 *                 spo2_scale (int), score_<parameter> (int) for each parameter that was available
 * A point is written when a resident's score changes, but at most once per `minIntervalMs` per
 * resident (a score flickering between two values writes the latest one when the interval is up).
 * Points go through the same journaled writer as alerts (journal-writer.ts), in a journal file of
 * their own, so nothing is lost while InfluxDB is down. The point time is the score's computedAt plus
 * a sub-ms offset from the resident id, so two residents never overwrite each other.
 */

export interface News2History {
  start(): Promise<void>;
  /** Offers the NEWS2 rule's current scores (resident id → score); cheap when nothing changed. */
  observe(scores: Readonly<Record<string, News2Score>>): void;
  drained(): Promise<void>;
  stats(): { pending: number; written: number; failures: number; points: number };
  close(): Promise<void>;
}

export interface News2HistoryDeps {
  readonly influx: InfluxHttp;
  readonly journalPath: string;
  readonly registry: RegistryIndex;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Default 60 s. */
  readonly minIntervalMs?: number;
}

/** What makes two scores "the same" for the history: everything but the timestamps. */
export function scoreSignature(s: News2Score): string {
  const parts = NEWS2_PARAMETERS.map((p) => `${p}:${s.components[p]?.score ?? '-'}`);
  return `${s.aggregate}|${s.partial ? 1 : 0}|${s.missing.join(',')}|${s.risk}|${s.spo2Scale}|${parts.join(',')}`;
}

export function news2Line(homeId: string, residentId: string, s: News2Score): string {
  const fields: Record<string, number | boolean | string | { int: number }> = {
    aggregate: { int: s.aggregate },
    partial: s.partial,
    missing: s.missing.join(','),
    risk: s.risk,
    spo2_scale: { int: s.spo2Scale },
  };
  for (const p of NEWS2_PARAMETERS) {
    const c = s.components[p];
    if (c !== undefined) fields[`score_${p}`] = { int: c.score };
  }
  return toLine({ measurement: 'news2', tags: { home: homeId, resident: residentId }, fields, timeNs: nsTime(s.computedAt, fnv1a(residentId) % 1_000_000) });
}

export function createNews2History(deps: News2HistoryDeps): News2History {
  const minIntervalMs = deps.minIntervalMs ?? 60_000;
  const writer: JournalWriter<undefined> = createJournalWriter<undefined>({ path: deps.journalPath, influx: deps.influx, clock: deps.clock, logger: deps.logger });
  /** Per resident: the signature last written and when; a change waiting for its interval. */
  const written = new Map<string, { sig: string; at: number }>();
  const waiting = new Map<string, News2Score>();
  let lastSeen: Readonly<Record<string, News2Score>> | undefined;
  let timer: ClockTimer | undefined;
  let points = 0;
  let closed = false;

  function write(residentId: string, s: News2Score, now: number): void {
    const resident = deps.registry.resident(residentId);
    if (resident === undefined) return;
    try {
      writer.append([{ lp: news2Line(resident.homeId, residentId, s) }]);
      points++;
    } catch (err) {
      deps.logger.error({ err, code: 'ALERTS_PERSIST_FAILED', residentId }, 'could not journal a NEWS2 score');
    }
    written.set(residentId, { sig: scoreSignature(s), at: now });
  }

  function offer(residentId: string, s: News2Score, now: number): void {
    const prev = written.get(residentId);
    if (prev !== undefined && prev.sig === scoreSignature(s)) {
      waiting.delete(residentId);
      return;
    }
    if (prev === undefined || now - prev.at >= minIntervalMs || now < prev.at) {
      waiting.delete(residentId);
      write(residentId, s, now);
    } else {
      waiting.set(residentId, s);
      arm();
    }
  }

  function arm(): void {
    if (timer !== undefined || closed) return;
    timer = deps.clock.setTimeout(() => {
      timer = undefined;
      const now = deps.clock.now();
      for (const [id, s] of [...waiting]) offer(id, s, now);
      if (waiting.size > 0) arm();
    }, Math.max(1000, Math.floor(minIntervalMs / 4)));
  }

  return {
    start: () => writer.start(),
    observe(scores) {
      // The rule returns the same object when nothing changed: most inputs cost one comparison.
      if (scores === lastSeen || closed) return;
      const before = lastSeen;
      lastSeen = scores;
      const now = deps.clock.now();
      for (const [id, s] of Object.entries(scores)) {
        if (before?.[id] === s) continue;
        offer(id, s, now);
      }
    },
    drained: () => writer.drained(),
    stats: () => ({ ...writer.stats(), points }),
    async close() {
      closed = true;
      if (timer) deps.clock.clearTimeout(timer);
      timer = undefined;
      // A change still waiting for its interval is written now rather than lost.
      const now = deps.clock.now();
      for (const [id, s] of waiting) write(id, s, now);
      waiting.clear();
      await writer.close();
    },
  };
}
