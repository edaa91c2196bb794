/**
 * A device's recent reporting interval, as the supervision rule (device silent) and the smoke rule
 * (a verification window's next reading overdue) both judge it: the latest gap between readings,
 * or the longest recent one decayed per reading when the device speeds up. Pure.
 *
 * A device that speeds up is trusted again within some reports: the interval decays by this per
 * message. 0.75 forgot a long gap after four short ones, so a detector whose gaps vary by ±50 %
 * around 34 s was called offline at its next long gap while reporting (property test, seed
 * 1993787272). At 0.9 that takes nine gaps in a row under 0.6 of the interval; a device that goes
 * from 60 s to 10 s reports is judged by its new cadence after about 17 reports, its budget meanwhile
 * at most 150 s, still within NFPA 72's 200 s with the deferral.
 */
const INTERVAL_DECAY = 0.9;

/** The interval after a reading at `now`; 0 (unknown) for a device's first reading. */
export function recentInterval(lastAt: number | undefined, lastInterval: number | undefined, now: number): number {
  return lastAt === undefined ? 0 : Math.max(now - lastAt, (lastInterval ?? 0) * INTERVAL_DECAY);
}
