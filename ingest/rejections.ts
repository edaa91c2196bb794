import type { Logger } from '../common/logger.ts';
import type { IngestRejectCode } from './points.ts';

/**
 * Counts rejected messages per code and logs them without letting a flood flood the log: per code
 * at most `burst` lines per `windowMs`, then one summary of how many were suppressed. The same
 * counter keyed by metric counts out-of-range readings (stored, flagged: `message` says so).
 */
export interface RejectionLog<C extends string = IngestRejectCode> {
  record(code: C, topic: string, reason: string): void;
  counts(): Readonly<Partial<Record<C, number>>>;
  total(): number;
}

export function createRejectionLog<C extends string = IngestRejectCode>(logger: Logger, now: () => number, burst = 10, windowMs = 10_000, message = 'rejected message'): RejectionLog<C> {
  const counts: Partial<Record<C, number>> = {};
  const windows = new Map<C, { start: number; logged: number; suppressed: number }>();
  let total = 0;
  return {
    record(code, topic, reason) {
      counts[code] = (counts[code] ?? 0) + 1;
      total++;
      const t = now();
      let w = windows.get(code);
      if (w === undefined || t - w.start >= windowMs) {
        if (w !== undefined && w.suppressed > 0) logger.warn({ code, suppressed: w.suppressed, windowMs }, `suppressed ${w.suppressed} more ${code} lines: ${message}`);
        w = { start: t, logged: 0, suppressed: 0 };
        windows.set(code, w);
      }
      if (w.logged < burst) {
        w.logged++;
        logger.warn({ code, topic: topic.slice(0, 200), reason }, message);
      } else {
        w.suppressed++;
      }
    },
    counts: () => ({ ...counts }),
    total: () => total,
  };
}
