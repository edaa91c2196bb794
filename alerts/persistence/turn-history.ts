import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { Fact } from '../rules/facts.ts';
import type { InfluxDatabase } from '../../common/influx/database.ts';
import { createJournalWriter, type JournalWriter } from './journal-writer.ts';
import { fnv1a, nsTime, toLine } from '../../common/influx/line-protocol.ts';

/**
 * Repositioning history in InfluxDB (issue 4: "turns done on time" per home and month):
 *   turn         tags home, resident, source (sensor | staff)   field interval_min (int, in force then)
 *   bed_presence tags home, resident                             field in_bed (bool)
 * Built from the facts the care rules report (alerts/rules/facts.ts), never from their state: a
 * `turn` fact (recorded by staff, or a movement burst the reposition rule counted) is a `turn`
 * point; a `bed` fact (presence changed or first known) is a `bed_presence` point, so the statistics
 * know when a resident needed turning at all. Lying down starts an interval but is no turn. Facts
 * are only reported on change, so a restart (rule states restored) writes nothing again. Points go
 * through the journaled writer (journal-writer.ts), in a journal file of their own, so nothing is
 * lost while InfluxDB is down. The time is the turn (or bed report) time plus a sub-ms offset from
 * the resident id: the same turn written twice overwrites itself instead of adding a turn.
 */

export type TurnSource = 'sensor' | 'staff';

export interface TurnRecord {
  readonly homeId: string;
  readonly residentId: string;
  readonly source: TurnSource;
  readonly ts: number;
  readonly intervalMin: number;
}

export interface BedRecord {
  readonly homeId: string;
  readonly residentId: string;
  readonly inBed: boolean;
  readonly ts: number;
}

/**
 * The turns and bed changes among the facts of one evaluation. Pure. Both the bed rule and the
 * reposition rule report a bed change they see, so equal bed facts of one evaluation are one change.
 */
export function turnRecords(facts: readonly Fact[]): { turns: TurnRecord[]; beds: BedRecord[] } {
  const turns: TurnRecord[] = [];
  const beds: BedRecord[] = [];
  for (const f of facts) {
    if (f.kind === 'turn') turns.push({ homeId: f.homeId, residentId: f.residentId, source: f.source, ts: f.ts, intervalMin: f.intervalMin });
    else if (f.kind === 'bed' && !beds.some((b) => b.residentId === f.residentId && b.inBed === f.inBed && b.ts === f.ts)) {
      beds.push({ homeId: f.homeId, residentId: f.residentId, inBed: f.inBed, ts: f.ts });
    }
  }
  return { turns, beds };
}

export function turnLine(t: TurnRecord): string {
  return toLine({
    measurement: 'turn',
    tags: { home: t.homeId, resident: t.residentId, source: t.source },
    fields: { interval_min: { int: t.intervalMin } },
    timeNs: nsTime(t.ts, fnv1a(t.residentId) % 1_000_000),
  });
}

export function bedLine(b: BedRecord): string {
  return toLine({
    measurement: 'bed_presence',
    tags: { home: b.homeId, resident: b.residentId },
    fields: { in_bed: b.inBed },
    timeNs: nsTime(b.ts, fnv1a(b.residentId) % 1_000_000),
  });
}

export interface TurnHistory {
  start(): Promise<void>;
  /** The facts of one evaluation (the engine's `onFacts`); other kinds are ignored. Never throws. */
  onFacts(facts: readonly Fact[]): void;
  drained(): Promise<void>;
  stats(): { pending: number; written: number; failures: number; turns: number; bedChanges: number };
  close(): Promise<void>;
}

export interface TurnHistoryDeps {
  readonly influx: InfluxDatabase;
  readonly journalPath: string;
  readonly clock: Clock;
  readonly logger: Logger;
}

export function createTurnHistory(deps: TurnHistoryDeps): TurnHistory {
  const writer: JournalWriter<undefined> = createJournalWriter<undefined>({ path: deps.journalPath, influx: deps.influx, clock: deps.clock, logger: deps.logger });
  let turns = 0;
  let bedChanges = 0;
  let closed = false;
  return {
    start: () => writer.start(),
    onFacts(facts) {
      if (closed) return;
      try {
        const c = turnRecords(facts);
        if (c.turns.length === 0 && c.beds.length === 0) return;
        writer.append([...c.turns.map((t) => ({ lp: turnLine(t) })), ...c.beds.map((b) => ({ lp: bedLine(b) }))]);
        turns += c.turns.length;
        bedChanges += c.beds.length;
      } catch (err) {
        deps.logger.error({ err, code: 'ALERTS_PERSIST_FAILED' }, 'could not journal a turn');
      }
    },
    drained: () => writer.drained(),
    stats: () => ({ ...writer.stats(), turns, bedChanges }),
    async close() {
      closed = true;
      await writer.close();
    },
  };
}
