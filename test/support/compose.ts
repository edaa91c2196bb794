/**
 * A service's `stop_grace_period` from `docker-compose config` in seconds: how long Docker waits after
 * SIGTERM before SIGKILL. docker-compose 1.29 prints it as written (`30s`, `1m30s`); unset is
 * Docker's default, 10 s. NaN for a form this does not read (the test then fails, not passes).
 */
export function graceSeconds(d: string | undefined): number {
  if (d === undefined) return 10;
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(d);
  return m === null || d === '' ? Number.NaN : Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
}
