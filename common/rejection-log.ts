import type { Clock, ClockTimer } from './clock.ts';
import type { Logger } from './logger.ts';

/**
 * Counts rejected messages per code and logs them without letting a flood flood the log: per code
 * at most `burst` lines per `windowMs`, then one summary line of how many were suppressed. The counts
 * stay exact whatever is logged. Ingest and the alerts process both use it (a device sending the
 * same bad message in a loop gave the alerts process 1,981 warn lines, 538 KB, in one run: issue 12).
 *
 * Without `timers` the summary of a window is written by the first record after the window (or by
 * close()); with them it is written when the window ends, so a flood that stops is still summed up
 * in the log. A log line is bounded by code: at most (burst + 1) lines per code per window.
 */
export interface RejectionLog<C extends string = string> {
  record(code: C, topic: string, reason: string): void;
  counts(): Readonly<Partial<Record<C, number>>>;
  total(): number;
  /** Writes the summaries still pending and releases the timers. */
  close(): void;
}

export type RejectionTimers = Pick<Clock, 'setTimeout' | 'clearTimeout'>;

export function createRejectionLog<C extends string = string>(
  logger: Logger,
  now: () => number,
  burst = 10,
  windowMs = 10_000,
  message = 'rejected message',
  timers?: RejectionTimers,
): RejectionLog<C> {
  const counts: Partial<Record<C, number>> = {};
  const windows = new Map<C, { start: number; logged: number; suppressed: number; timer?: ClockTimer }>();
  let total = 0;

  function summarise(code: C): void {
    const w = windows.get(code);
    if (w === undefined) return;
    if (w.timer !== undefined) timers?.clearTimeout(w.timer);
    windows.delete(code);
    if (w.suppressed > 0) logger.warn({ code, suppressed: w.suppressed, count: counts[code] ?? 0, windowMs }, `suppressed ${w.suppressed} more ${code} lines: ${message}`);
  }

  return {
    record(code, topic, reason) {
      counts[code] = (counts[code] ?? 0) + 1;
      total++;
      const t = now();
      let w = windows.get(code);
      if (w !== undefined && t - w.start >= windowMs) {
        summarise(code);
        w = undefined;
      }
      if (w === undefined) {
        w = { start: t, logged: 0, suppressed: 0 };
        windows.set(code, w);
      }
      if (w.logged < burst) {
        w.logged++;
        logger.warn({ code, topic: topic.slice(0, 200), reason }, message);
        return;
      }
      w.suppressed++;
      if (w.timer === undefined && timers !== undefined) w.timer = timers.setTimeout(() => summarise(code), Math.max(0, w.start + windowMs - t));
    },
    counts: () => ({ ...counts }),
    total: () => total,
    close() {
      for (const code of [...windows.keys()]) summarise(code);
    },
  };
}
