import { RAW_TELEMETRY } from '../common/influx-schema.ts';
import type { Clock, ClockTimer } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { BASELINE_METRICS, learnResident, type BaselineMetric, type LearnOptions } from './baselines-learn.ts';
import { ident, type InfluxReader } from '../common/influx/reader.ts';
import type { CareRuleContext } from './rules/care/care-context.ts';
import { IMPLAUSIBLE } from './rules/care/vital-checks.ts';

/**
 * Personal baselines, the adapter: at start and then every `refreshMs` it asks InfluxDB for each
 * resident's 5-minute medians over the last `windowMs` (7 days by default) and hands them to the pure
 * learner (baselines-learn.ts). The rules read `current()` through the CareRuleContext; they never
 * wait for InfluxDB. When InfluxDB is unreachable the previous baselines stay in force (and none at
 * first start: the defaults apply), and the failure is logged with a stable code and counted.
 */

export type Baselines = NonNullable<CareRuleContext['baselines']>;

export interface BaselineServiceDeps {
  readonly influx: InfluxReader;
  readonly registry: RegistryIndex;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Default one hour. */
  readonly refreshMs?: number;
  /** Default 7 days. */
  readonly windowMs?: number;
  /** Default 5 minutes. */
  readonly bucketMs?: number;
  readonly learn?: Partial<LearnOptions>;
}

export interface BaselineService {
  start(): Promise<void>;
  close(): Promise<void>;
  /** The baselines in force: resident id → metric → limits. Never undefined; empty before the first success. */
  current(): Baselines;
  /** Re-learns now; resolves false when InfluxDB could not be read. */
  refresh(): Promise<boolean>;
  stats(): { refreshes: number; failures: number; residents: number; learnedAt?: number };
}

/** Only readings a living resident produces: the implausible ones (probe off) would drag the median. */
function plausibleWhere(metric: BaselineMetric): string {
  const b = IMPLAUSIBLE[metric];
  const parts = [`${ident(metric)} >= ${b.below ?? 0}`];
  if (b.above !== undefined) parts.push(`${ident(metric)} <= ${b.above}`);
  return parts.join(' AND ');
}

export function baselineQuery(from: number, to: number, bucketMs: number): string {
  return BASELINE_METRICS.map(
    (m) =>
      `SELECT median(${ident(m)}) AS v FROM ${RAW_TELEMETRY} WHERE time >= ${Math.trunc(from)}ms AND time < ${Math.trunc(to)}ms AND ${plausibleWhere(m)} ` +
      `AND ("kind" = 'vital_signs_monitor' OR "kind" = 'bed_sensor') GROUP BY time(${bucketMs}ms), "resident" fill(none)`,
  ).join('; ');
}

export function createBaselineService(deps: BaselineServiceDeps): BaselineService {
  const refreshMs = deps.refreshMs ?? 3_600_000;
  const windowMs = deps.windowMs ?? 7 * 86_400_000;
  const bucketMs = deps.bucketMs ?? 5 * 60_000;
  const logger = deps.logger.child({ component: 'baselines' });
  let current: Baselines = {};
  let timer: ClockTimer | undefined;
  let closed = false;
  let running: Promise<boolean> | undefined;
  let refreshes = 0;
  let failures = 0;
  let learnedAt: number | undefined;

  async function learn(): Promise<boolean> {
    const to = deps.clock.now();
    try {
      const results = await deps.influx.query(baselineQuery(to - windowMs, to, bucketMs));
      const perResident = new Map<string, Partial<Record<BaselineMetric, number[]>>>();
      BASELINE_METRICS.forEach((metric, i) => {
        for (const s of results[i] ?? []) {
          const id = s.tags?.resident;
          if (id === undefined || id === '') continue;
          const values = s.values.map((row) => row[1]).filter((v): v is number => typeof v === 'number');
          const entry = perResident.get(id) ?? {};
          entry[metric] = values;
          perResident.set(id, entry);
        }
      });
      const next: Record<string, Partial<Record<BaselineMetric, { low?: number; high?: number }>>> = {};
      for (const [id, series] of perResident) {
        const resident = deps.registry.resident(id);
        if (resident === undefined) continue; // a resident who has left: nothing to alert on
        const limits = learnResident(series, { ...deps.learn, hypercapnic: resident.hypercapnic === true });
        if (Object.keys(limits).length > 0) next[id] = limits;
      }
      current = next;
      refreshes++;
      learnedAt = to;
      logger.info({ residents: Object.keys(next).length }, 'personal baselines learned');
      return true;
    } catch (err) {
      failures++;
      logger.warn({ err, code: 'ALERTS_BASELINES_UNAVAILABLE' }, 'could not learn baselines from InfluxDB; keeping the previous ones');
      return false;
    }
  }

  function refresh(): Promise<boolean> {
    running ??= learn().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    timer = deps.clock.setTimeout(() => {
      timer = undefined;
      if (closed) return;
      void refresh().finally(() => {
        if (!closed) schedule();
      });
    }, refreshMs);
  }

  return {
    async start() {
      await refresh();
      if (!closed) schedule();
    },
    async close() {
      closed = true;
      if (timer) deps.clock.clearTimeout(timer);
      timer = undefined;
      await running;
    },
    current: () => current,
    refresh,
    stats: () => ({ refreshes, failures, residents: Object.keys(current).length, ...(learnedAt !== undefined ? { learnedAt } : {}) }),
  };
}
