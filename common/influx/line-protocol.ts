import { InfluxError } from './errors.ts';

/**
 * The one InfluxDB line-protocol encoder (InfluxDB 1.x "Line protocol reference"):
 *
 *   measurement,tagKey=tagValue,… fieldKey=fieldValue,… timestamp
 *
 * - measurement: comma and space escaped;
 * - tag keys, tag values, field keys: comma, equals sign and space escaped;
 * - string field values: double-quoted, `"` and `\` escaped (a newline inside the quotes is kept);
 * - integers carry an `i` suffix; floats are written as JavaScript prints them (`1e+21` parses).
 *
 * What 1.x cannot carry is refused with INFLUX_UNENCODABLE instead of being stored mangled: a newline
 * in a name or tag ends the point, and a backslash in a name or tag does not round-trip (1.6's parser
 * unescapes only `\,` `\=` `\ `, so `\\` is stored as two backslashes, and a trailing `\` swallows
 * the separator after it; test/common/influx/adapter.test.ts shows both). carewatch's tags are ids
 * (contract/topics.ts ID_PATTERN), codes and kinds, so a refusal means a bug upstream, not a device.
 *
 * Hand-written strings, not @influxdata/influxdb-client's Point: bench/encoder.ts measured Point
 * 2.7x slower per telemetry point than ingest's string building (54,000 vs 144,000 points/s, i.e.
 * 92 vs 35 ms of event loop per 5,000-point batch; bench/README.md "Line-protocol encoder"), and
 * Point writes a tag ending in `\` so that it swallows the separator after it.
 */

// Non-global twins for the cheap test, so no `lastIndex` state leaks between calls.
const MEASUREMENT_RE = /[, ]/g;
const KEY_RE = /[,= ]/g;
const NAME_SPECIAL = /[,= \\\n\r]/;
const UNENCODABLE = /[\\\n\r]/;
const FIELD_STRING_RE = /["\\]/g;
const FIELD_STRING_TEST = /["\\]/;

function refuse(what: string, s: string): never {
  throw new InfluxError('INFLUX_UNENCODABLE', `${what} ${JSON.stringify(s.slice(0, 200))} has a newline or backslash, which InfluxDB 1.x line protocol cannot carry`);
}

/** Measurement names: comma and space escaped. */
export function escapeMeasurement(s: string): string {
  if (!NAME_SPECIAL.test(s)) return s;
  if (UNENCODABLE.test(s)) refuse('measurement', s);
  return s.replace(MEASUREMENT_RE, '\\$&');
}

/** Tag keys, tag values and field keys: comma, equals sign and space escaped. */
export function escapeKey(s: string): string {
  if (!NAME_SPECIAL.test(s)) return s;
  if (UNENCODABLE.test(s)) refuse('tag or field key/value', s);
  return s.replace(KEY_RE, '\\$&');
}

/** A string field value: double-quoted, `"` and `\` escaped. */
export function fieldString(s: string): string {
  return `"${FIELD_STRING_TEST.test(s) ? s.replace(FIELD_STRING_RE, '\\$&') : s}"`;
}

/** A float field value. NaN and ±Infinity have no line-protocol form. */
export function fieldFloat(n: number): string {
  if (!Number.isFinite(n)) throw new InfluxError('INFLUX_UNENCODABLE', `float field ${n} is not finite`);
  return String(n);
}

/** An integer field value (`5i`). InfluxDB integers are int64; a JS number is exact to 2^53. */
export function fieldInt(n: number | bigint): string {
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new InfluxError('INFLUX_UNENCODABLE', `integer field ${n} is not a safe integer`);
  return `${n}i`;
}

/** A field value for toLine: a number is a float, `{ int }` or a bigint an integer. */
export type FieldValue = number | bigint | boolean | string | { readonly int: number };

export interface Point {
  readonly measurement: string;
  /** Undefined or empty tags are left out (InfluxDB refuses an empty tag value). */
  readonly tags: Readonly<Record<string, string | undefined>>;
  /** Undefined fields are left out; a point needs at least one. */
  readonly fields: Readonly<Record<string, FieldValue | undefined>>;
  /** Nanoseconds since the epoch (the writer's default precision). */
  readonly timeNs: bigint | string;
}

function fieldValue(v: FieldValue): string {
  if (typeof v === 'string') return fieldString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return fieldInt(v);
  if (typeof v === 'object') return fieldInt(v.int);
  return fieldFloat(v);
}

/** One point's line; tags sorted by key, as InfluxDB recommends for write performance. */
export function toLine(p: Point): string {
  const tags = Object.entries(p.tags)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `,${escapeKey(k)}=${escapeKey(v)}`)
    .join('');
  const fields = Object.entries(p.fields)
    .filter((e): e is [string, FieldValue] => e[1] !== undefined)
    .map(([k, v]) => `${escapeKey(k)}=${fieldValue(v)}`);
  if (fields.length === 0) throw new InfluxError('INFLUX_UNENCODABLE', `point in ${p.measurement} has no fields`);
  return `${escapeMeasurement(p.measurement)}${tags} ${fields.join(',')} ${p.timeNs}`;
}

/** ms → ns as decimal text (ms * 1e6 exceeds 2^53, so no float arithmetic). */
export function msToNs(ms: number): string {
  return ms === 0 ? '0' : `${Math.trunc(ms)}000000`;
}

/**
 * ms → ns plus a sub-millisecond offset (< 1e6) that keeps distinct points of the same ms apart,
 * while a rewrite of the same point (same series, same offset) overwrites itself: idempotent writes.
 */
export function nsTime(ms: number, offset: number): bigint {
  return BigInt(Math.trunc(ms)) * 1_000_000n + BigInt(Math.trunc(offset) % 1_000_000);
}

/** FNV-1a, 32 bit: a stable small hash for time offsets. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
