import { createRejectionLog as createLog, type RejectionLog as Log, type RejectionTimers } from '../common/rejection-log.ts';
import type { Logger } from '../common/logger.ts';
import type { IngestRejectCode } from './points.ts';

/**
 * Ingest's rejection counter and rate-limited log: common/rejection-log.ts (shared with the alerts
 * process), keyed by ingest's codes by default. The same counter keyed by metric counts out-of-range
 * readings (stored, flagged: `message` says so).
 */
export type RejectionLog<C extends string = IngestRejectCode> = Log<C>;

export function createRejectionLog<C extends string = IngestRejectCode>(logger: Logger, now: () => number, burst = 10, windowMs = 10_000, message = 'rejected message', timers?: RejectionTimers): RejectionLog<C> {
  return createLog<C>(logger, now, burst, windowMs, message, timers);
}
