/** Waits `ms` of wall-clock time (a negative wait returns on the next timer turn). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
