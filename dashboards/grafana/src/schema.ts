import { RP_RAW, RP_ROLLUP, TELEMETRY_1M, rollupField } from '../../../common/influx-schema.ts';
import { METRICS, METRIC_NAMES, type MetricName } from '../../../contract/metrics.ts';

/**
 * What carewatch writes to InfluxDB (docs/architecture.md "InfluxDB schema"), as the dashboards may
 * name it. A query built with `influxql()` can only name a measurement, tag or field listed here, so a
 * typo or a field nobody writes fails to compile; test/dashboards/grafana.test.ts checks the other
 * way round, that every name a generated query uses is really present in an InfluxDB that the real
 * ingest and alerts processes filled. `rp` names the retention policy of those not in the default
 * one (common/influx-schema.ts): raw readings for 30 days, their per-minute aggregates for two years.
 */
const NUMERIC_NAMES = METRIC_NAMES.filter((m) => METRICS[m].type === 'number');
const BOOLEAN_NAMES = METRIC_NAMES.filter((m) => METRICS[m].type === 'boolean');

export const MEASUREMENTS = {
  telemetry: { rp: RP_RAW, tags: ['home', 'device', 'kind', 'room', 'resident'], fields: [...METRIC_NAMES, 'seq', 'broker_ts'] },
  [TELEMETRY_1M]: {
    rp: RP_ROLLUP,
    tags: ['home', 'device', 'kind', 'room', 'resident'],
    fields: [...NUMERIC_NAMES.flatMap((m) => (['mean', 'min', 'max'] as const).map((a) => rollupField(a, m))), ...BOOLEAN_NAMES.map((m) => rollupField('last', m)), 'readings'],
  },
  event: { tags: ['home', 'device', 'kind', 'room', 'resident', 'type'], fields: ['seq', 'code', 'detail', 'ok'] },
  status: { tags: ['home', 'device', 'kind'], fields: ['online', 'reason'] },
  rejected: { rp: RP_RAW, tags: ['code', 'home', 'device'], fields: ['topic', 'reason', 'payload'] },
  alert: { tags: ['home', 'category', 'rule', 'state'], fields: ['id', 'version', 'json'] },
  alert_audit: { tags: ['home', 'action'], fields: ['alert_id', 'seq', 'json'] },
  news2: { tags: ['home', 'resident'], fields: ['aggregate', 'partial', 'missing', 'risk', 'spo2_scale'] },
  care_action: { tags: ['home', 'resident', 'action'], fields: ['by', 'json'] },
  turn: { tags: ['home', 'resident', 'source'], fields: ['interval_min'] },
  bed_presence: { tags: ['home', 'resident'], fields: ['in_bed'] },
} as const satisfies Record<string, { readonly rp?: string; readonly tags: readonly string[]; readonly fields: readonly string[] }>;

export type Measurement = keyof typeof MEASUREMENTS;
export type TagOf<M extends Measurement> = (typeof MEASUREMENTS)[M]['tags'][number];
export type FieldOf<M extends Measurement> = (typeof MEASUREMENTS)[M]['fields'][number];

/** Numeric metrics (aggregations such as mean and max do not apply to the boolean ones). */
export type NumericMetric = { [K in MetricName]: (typeof METRICS)[K]['type'] extends 'number' ? K : never }[MetricName];
