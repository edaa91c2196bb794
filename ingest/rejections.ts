import type { Logger } from '../common/logger.ts';
import type { IngestRejectCode } from './points.ts';

/**
 * Counts rejected messages per code and logs them without letting a flood flood the log: per code
 * at most `burst` lines per `windowMs`, then one summary of how many were suppressed.
 */
export interface RejectionLog {
  record(code: IngestRejectCode, topic: string, reason: string): void;
  counts(): Readonly<Partial<Record<IngestRejectCode, number>>>;
  total(): number;
}

export function createRejectionLog(logger: Logger, now: () => number, burst = 10, windowMs = 10_000): RejectionLog {
  const counts: Partial<Record<IngestRejectCode, number>> = {};
  const windows = new Map<IngestRejectCode, { start: number; logged: number; suppressed: number }>();
  let total = 0;
  return {
    record(code, topic, reason) {
      counts[code] = (counts[code] ?? 0) + 1;
      total++;
      const t = now();
      let w = windows.get(code);
      if (w === undefined || t - w.start >= windowMs) {
        if (w !== undefined && w.suppressed > 0) logger.warn({ code, suppressed: w.suppressed, windowMs }, `suppressed ${w.suppressed} more ${code} rejections`);
        w = { start: t, logged: 0, suppressed: 0 };
        windows.set(code, w);
      }
      if (w.logged < burst) {
        w.logged++;
        logger.warn({ code, topic: topic.slice(0, 200), reason }, 'rejected message');
      } else {
        w.suppressed++;
      }
    },
    counts: () => ({ ...counts }),
    total: () => total,
  };
}
