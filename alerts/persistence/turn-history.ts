import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { RuleInput } from '../rules/types.ts';
import type { InfluxHttp } from './influx-http.ts';
import { createJournalWriter, type JournalWriter } from './journal-writer.ts';
import { fnv1a, nsTime, toLine } from './line-protocol.ts';

/**
 * Repositioning history in InfluxDB (issue 4: "turns done on time" per home and month):
 *   turn         tags home, resident, source (sensor | staff)   field interval_min (int, in force then)
 *   bed_presence tags home, resident                             field in_bed (bool)
 * A `turn` point is written when a turn happens: `staff` for a recorded `turned` care action, `sensor`
 * when the reposition rule's `residents[id].lastTurn` moves to a movement-detected turn. A
 * `bed_presence` point is written when the rule's bed record for a resident changes between in bed
 * and out of bed (or is first seen), so the statistics know when a resident needed turning at all.
 * The rule state is only read (the hook in alerts/alerts.ts hands it over after each evaluation), and
 * values are compared, not object identity, so it works whether the engine lets the rule update its
 * state in place or not. Points go through the journaled writer (journal-writer.ts), in a journal
 * file of their own, so nothing is lost while InfluxDB is down. The time is the turn (or bed
 * report) time plus a sub-ms offset from the resident id: a re-detection of the same turn after a
 * restart overwrites itself instead of adding a turn.
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

/** What the hook last saw of each resident, so only changes are written. */
export interface TurnSeen {
  readonly lastTurn: Map<string, number>;
  readonly inBed: Map<string, boolean>;
}

export function emptySeen(): TurnSeen {
  return { lastTurn: new Map(), inBed: new Map() };
}

/** The parts of the reposition rule's state read here (alerts/rules/care/reposition-rule.ts). */
interface TurnEntryView {
  readonly lastTurn?: unknown;
  readonly by?: unknown;
}
interface BedView {
  readonly inBed?: unknown;
  readonly ts?: unknown;
}
function record<T>(v: unknown, key: string): Readonly<Record<string, T>> | undefined {
  const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  return typeof o === 'object' && o !== null ? (o as Record<string, T>) : undefined;
}

const DEFAULT_INTERVAL_MIN = 120;

/**
 * The turns and bed changes one evaluation of the reposition rule produced. Pure apart from
 * updating `seen`. Only the resident the input is about is looked at (ticks never turn anyone).
 */
export function detectTurnChanges(input: RuleInput, state: unknown, seen: TurnSeen, registry: RegistryIndex): { turns: TurnRecord[]; beds: BedRecord[] } {
  const turns: TurnRecord[] = [];
  const beds: BedRecord[] = [];
  let residentId: string | undefined;
  if (input.type === 'care_action') residentId = input.residentId;
  else if (input.type === 'telemetry' || input.type === 'event') residentId = input.device.residentId;
  if (residentId === undefined) return { turns, beds };
  const r = registry.resident(residentId);
  if (r === undefined) return { turns, beds };
  const intervalMin = r.turnIntervalMin ?? DEFAULT_INTERVAL_MIN;
  if (input.type === 'care_action' && input.action === 'turned') {
    // The rule counts a staff turn at the recorded time, never in the future.
    turns.push({ homeId: r.homeId, residentId, source: 'staff', ts: Math.min(input.ts, input.now), intervalMin });
  }
  const e = record<TurnEntryView>(state, 'residents')?.[residentId];
  if (e !== undefined && typeof e.lastTurn === 'number') {
    const prev = seen.lastTurn.get(residentId);
    seen.lastTurn.set(residentId, e.lastTurn);
    // `in_bed` (lying down) starts an interval but is no turn; `staff` is written from the input above.
    if (prev !== e.lastTurn && e.by === 'movement') turns.push({ homeId: r.homeId, residentId, source: 'sensor', ts: e.lastTurn, intervalMin });
  }
  const b = record<BedView>(state, 'beds')?.[residentId];
  if (b !== undefined && typeof b.inBed === 'boolean' && typeof b.ts === 'number' && seen.inBed.get(residentId) !== b.inBed) {
    seen.inBed.set(residentId, b.inBed);
    beds.push({ homeId: r.homeId, residentId, inBed: b.inBed, ts: b.ts });
  }
  return { turns, beds };
}

/** Marks everything in a (restored) reposition state as already written. */
export function seedSeen(state: unknown, seen: TurnSeen): void {
  for (const [id, e] of Object.entries(record<TurnEntryView>(state, 'residents') ?? {})) if (typeof e.lastTurn === 'number') seen.lastTurn.set(id, e.lastTurn);
  for (const [id, b] of Object.entries(record<BedView>(state, 'beds') ?? {})) if (typeof b.inBed === 'boolean') seen.inBed.set(id, b.inBed);
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
  /** After each evaluation of the reposition rule: its input and its new state. Never throws. */
  observe(input: RuleInput, state: unknown): void;
  /** The restored reposition state, so a restart does not write its turns again. */
  seed(state: unknown): void;
  drained(): Promise<void>;
  stats(): { pending: number; written: number; failures: number; turns: number; bedChanges: number };
  close(): Promise<void>;
}

export interface TurnHistoryDeps {
  readonly influx: InfluxHttp;
  readonly journalPath: string;
  readonly registry: RegistryIndex;
  readonly clock: Clock;
  readonly logger: Logger;
}

export function createTurnHistory(deps: TurnHistoryDeps): TurnHistory {
  const writer: JournalWriter<undefined> = createJournalWriter<undefined>({ path: deps.journalPath, influx: deps.influx, clock: deps.clock, logger: deps.logger });
  const seen = emptySeen();
  let turns = 0;
  let bedChanges = 0;
  let closed = false;
  return {
    start: () => writer.start(),
    observe(input, state) {
      if (closed) return;
      try {
        const c = detectTurnChanges(input, state, seen, deps.registry);
        if (c.turns.length === 0 && c.beds.length === 0) return;
        writer.append([...c.turns.map((t) => ({ lp: turnLine(t) })), ...c.beds.map((b) => ({ lp: bedLine(b) }))]);
        turns += c.turns.length;
        bedChanges += c.beds.length;
      } catch (err) {
        deps.logger.error({ err, code: 'ALERTS_PERSIST_FAILED' }, 'could not journal a turn');
      }
    },
    seed: (state) => seedSeen(state, seen),
    drained: () => writer.drained(),
    stats: () => ({ ...writer.stats(), turns, bedChanges }),
    async close() {
      closed = true;
      await writer.close();
    },
  };
}
