/**
 * When the next rule-state snapshot may start, after the last one took `lastSaveMs` from its cut
 * to the file on disk. Every 3 s for a site of homes (issue 3: verification and rate-of-rise windows
 * survive a restart, losing at most that much); but a save's cost grows with the devices, and at
 * 102,000 devices one took 650 ms of CPU and wrote 60 MB (session 9, the engine alone), a fifth of a
 * core every 3 s. So the wait after a save is also 4× its duration (a save then takes at most a fifth
 * of alerts' time), and never more than 15 s. A save also never starts before the last one ended:
 * saves taking longer than the period queued up. Pure: the caller measures, on its clock.
 *
 * Why 15 s: after a crash and a quick restart (under supervision's 60 s re-arm gap) the restored
 * last-heard times are as old as the snapshot. A vital-signs monitor reports every 5 s on a 30 s
 * budget (contract/device-kinds.ts): 5 s + 15 s + a restart of a few seconds stays inside it, so a
 * restart does not call the fastest monitors silent. At 60 s it would.
 */
export const SNAPSHOT_EVERY_MS = 3_000;
export const SNAPSHOT_MAX_EVERY_MS = 15_000;
/** A save may take at most 1/(1 + SNAPSHOT_COST_FACTOR) of the time. */
export const SNAPSHOT_COST_FACTOR = 4;

export function snapshotDelayMs(lastSaveMs: number): number {
  const cost = Number.isFinite(lastSaveMs) && lastSaveMs > 0 ? lastSaveMs * SNAPSHOT_COST_FACTOR : 0;
  return Math.min(SNAPSHOT_MAX_EVERY_MS, Math.max(SNAPSHOT_EVERY_MS, cost));
}
