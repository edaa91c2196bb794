import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { MEASUREMENTS, type FieldOf, type Measurement, type TagOf } from './schema.ts';

/**
 * A small typed builder for InfluxQL targets, which @grafana/grafana-foundation-sdk lacks (it has
 * builders for Prometheus, Loki, … but no InfluxDB query type). Two parts:
 * - `influxql({...})` composes a SELECT from typed parts: measurement, fields and tags are checked
 *   against schema.ts at compile time, and Grafana's macros (`$timeFilter`, `$__interval`, template
 *   variables) are placed the one way InfluxDB 1.x and Grafana both accept;
 * - `InfluxQLTarget` is a `cog.Builder<cog.Dataquery>` the SDK's panel builders take as a target.
 */

export const DATASOURCE: dashboard.DataSourceRef = { type: 'influxdb', uid: 'carewatch-influx' };

export type Aggregate = 'mean' | 'min' | 'max' | 'last' | 'count' | 'sum' | 'median';

export type Condition<M extends Measurement> =
  /** `"tag" =~ /^$var$/`: follows a (multi-value) template variable. */
  | { readonly tag: TagOf<M>; readonly variable: string }
  | { readonly tag: TagOf<M>; readonly equals: string }
  | { readonly tag: TagOf<M>; readonly oneOf: readonly string[] }
  | { readonly field: FieldOf<M>; readonly equals: string | number | boolean };

export interface Select<M extends Measurement> {
  readonly from: M;

  /** Aggregated fields, or raw fields for a table of rows (`aggregate` absent). */
  readonly fields: ReadonlyArray<{ readonly field: FieldOf<M>; readonly aggregate?: Aggregate; readonly as?: string }>;
  readonly where?: ReadonlyArray<Condition<M>>;
  /** Group into `$__interval` buckets (time series); absent for a table of latest values or rows. */
  readonly perInterval?: boolean;
  readonly groupBy?: ReadonlyArray<TagOf<M>>;
  readonly fill?: 'none' | '0' | 'null' | 'previous';
  readonly newestFirst?: boolean;
  readonly limit?: number;
}

const ident = (name: string): string => `"${name.replace(/"/g, '\\"')}"`;
const literal = (v: string | number | boolean): string => (typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : String(v));
const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function condition<M extends Measurement>(c: Condition<M>): string {
  if ('field' in c) return `${ident(c.field)} = ${literal(c.equals)}`;
  if ('variable' in c) return `${ident(c.tag)} =~ /^$${c.variable}$/`;
  if ('equals' in c) return `${ident(c.tag)} = ${literal(c.equals)}`;
  return `${ident(c.tag)} =~ /^(${c.oneOf.map(escapeRegex).join('|')})$/`;
}

export function influxql<M extends Measurement>(s: Select<M>): string {
  const fields = s.fields
    .map((f) => (f.aggregate === undefined ? ident(f.field) : `${f.aggregate}(${ident(f.field)})`) + (f.as !== undefined ? ` AS ${ident(f.as)}` : ''))
    .join(', ');
  // The measurement's retention policy (schema.ts): raw readings and their aggregates are not in the default one.
  const spec = MEASUREMENTS[s.from];
  const from = 'rp' in spec ? `${ident(spec.rp)}.${ident(s.from)}` : ident(s.from);
  const where = [...(s.where ?? []).map((c) => condition(c)), '$timeFilter'].join(' AND ');
  const groups = [...(s.perInterval === true ? ['time($__interval)'] : []), ...(s.groupBy ?? []).map(ident)];
  let q = `SELECT ${fields} FROM ${from} WHERE ${where}`;
  if (groups.length > 0) q += ` GROUP BY ${groups.join(', ')}`;
  if (s.fill !== undefined) q += ` fill(${s.fill})`;
  if (s.newestFirst === true) q += ' ORDER BY time DESC';
  if (s.limit !== undefined) q += ` LIMIT ${s.limit}`;
  return q;
}

/** The InfluxDB target Grafana stores in a panel (raw InfluxQL mode). */
export interface InfluxQLQuery extends cog.Dataquery {
  refId: string;
  datasource: dashboard.DataSourceRef;
  query: string;
  rawQuery: true;
  resultFormat: 'time_series' | 'table';
  alias?: string;
}

export class InfluxQLTarget implements cog.Builder<cog.Dataquery> {
  private readonly internal: InfluxQLQuery;

  constructor(query: string) {
    this.internal = {
      refId: 'A',
      datasource: DATASOURCE,
      query,
      rawQuery: true,
      resultFormat: 'time_series',
      // cog.Dataquery's marker method: never serialised (JSON drops functions).
      _implementsDataqueryVariant() {},
    };
  }

  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }

  table(): this {
    this.internal.resultFormat = 'table';
    return this;
  }

  /** Series name, e.g. `$tag_room` (Grafana's InfluxDB alias patterns). */
  alias(alias: string): this {
    this.internal.alias = alias;
    return this;
  }

  build(): InfluxQLQuery {
    return this.internal;
  }
}

/**
 * An annotation from an InfluxQL query. The SDK's AnnotationQuery has no InfluxDB fields, so this
 * builds Grafana's InfluxDB annotation shape: the query with `textColumn` / `tagsColumn` naming
 * result columns.
 */
export interface InfluxAnnotation extends dashboard.AnnotationQuery {
  query: string;
  textColumn: string;
  tagsColumn: string;
}

export class InfluxAnnotationBuilder implements cog.Builder<dashboard.AnnotationQuery> {
  private readonly internal: InfluxAnnotation;

  constructor(name: string, query: string, textColumn: string, tagsColumn: string, iconColor: string) {
    this.internal = { name, datasource: DATASOURCE, enable: true, iconColor, query, textColumn, tagsColumn };
  }

  build(): InfluxAnnotation {
    return this.internal;
  }
}
