import type { Clock, ClockTimer } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import { NEWS2_PARAMETERS } from '../rules/care/news2.ts';
import type { News2Score } from '../rules/care/news2-rule.ts';
import type { Fact, News2Fact } from '../rules/facts.ts';
import type { InfluxDatabase } from '../../common/influx/database.ts';
import { createJournalWriter, type JournalWriter } from './journal-writer.ts';
import { fnv1a, nsTime, toLine } from '../../common/influx/line-protocol.ts';

/**
 * Per-resident NEWS2 history in InfluxDB (issue 4, "Per-resident history"), built from the NEWS2
 * rule's `news2` facts (alerts/rules/facts.ts):
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
  /** The facts of one evaluation (the engine's `onFacts`): each `news2` fact is a new score; other kinds are ignored. */
  onFacts(facts: readonly Fact[]): void;
  drained(): Promise<void>;
  stats(): { pending: number; written: number; failures: number; points: number };
  close(): Promise<void>;
}

export interface News2HistoryDeps {
  readonly influx: InfluxDatabase;
  readonly journalPath: string;
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
  const waiting = new Map<string, News2Fact>();
  let timer: ClockTimer | undefined;
  let points = 0;
  let closed = false;

  function write(f: News2Fact, now: number): void {
    try {
      writer.append([{ lp: news2Line(f.homeId, f.residentId, f.score) }]);
      points++;
    } catch (err) {
      deps.logger.error({ err, code: 'ALERTS_PERSIST_FAILED', residentId: f.residentId }, 'could not journal a NEWS2 score');
    }
    written.set(f.residentId, { sig: scoreSignature(f.score), at: now });
  }

  function offer(f: News2Fact, now: number): void {
    const prev = written.get(f.residentId);
    if (prev !== undefined && prev.sig === scoreSignature(f.score)) {
      waiting.delete(f.residentId);
      return;
    }
    if (prev === undefined || now - prev.at >= minIntervalMs || now < prev.at) {
      waiting.delete(f.residentId);
      write(f, now);
    } else {
      waiting.set(f.residentId, f);
      arm();
    }
  }

  function arm(): void {
    if (timer !== undefined || closed) return;
    timer = deps.clock.setTimeout(() => {
      timer = undefined;
      const now = deps.clock.now();
      for (const f of [...waiting.values()]) offer(f, now);
      if (waiting.size > 0) arm();
    }, Math.max(1000, Math.floor(minIntervalMs / 4)));
  }

  return {
    start: () => writer.start(),
    onFacts(facts) {
      if (closed) return;
      let now: number | undefined;
      for (const f of facts) {
        if (f.kind !== 'news2') continue;
        now ??= deps.clock.now();
        offer(f, now);
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
      for (const f of waiting.values()) write(f, now);
      waiting.clear();
      await writer.close();
    },
  };
}
