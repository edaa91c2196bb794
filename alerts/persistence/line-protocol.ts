/**
 * InfluxDB 1.x line protocol, built by hand:
 *   measurement,tag=v,tag=v field=v,field=v timestamp
 * Escaping per the InfluxDB 1.x line protocol reference: measurement names escape commas and
 * spaces; tag keys, tag values and field keys escape commas, equals signs and spaces; string field
 * values are double-quoted with `"` and `\` escaped. Newlines would end the point, so they are
 * refused in names and replaced in tag values.
 */
export type FieldValue = number | bigint | boolean | string | { readonly int: number };

export interface Point {
  readonly measurement: string;
  readonly tags: Readonly<Record<string, string | undefined>>;
  readonly fields: Readonly<Record<string, FieldValue | undefined>>;
  /** Nanoseconds since the epoch. */
  readonly timeNs: bigint;
}

function noNewline(s: string): string {
  return s.replace(/[\r\n]/g, ' ');
}

export function escapeMeasurement(s: string): string {
  return noNewline(s).replace(/[, ]/g, (c) => `\\${c}`);
}

export function escapeTag(s: string): string {
  // A trailing backslash would escape the separator that follows it.
  return noNewline(s).replace(/[,= ]/g, (c) => `\\${c}`).replace(/\\$/, '\\\\');
}

export function escapeFieldString(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function fieldValue(v: FieldValue): string {
  if (typeof v === 'string') return escapeFieldString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return `${v}i`;
  if (typeof v === 'object') {
    if (!Number.isSafeInteger(v.int)) throw new Error(`integer field ${v.int} is not a safe integer`);
    return `${v.int}i`;
  }
  if (!Number.isFinite(v)) throw new Error(`float field ${v} is not finite`);
  return String(v);
}

export function toLine(p: Point): string {
  const tags = Object.entries(p.tags)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) // InfluxDB recommends tags sorted by key
    .map(([k, v]) => `,${escapeTag(k)}=${escapeTag(v)}`)
    .join('');
  const fields = Object.entries(p.fields)
    .filter((e): e is [string, FieldValue] => e[1] !== undefined)
    .map(([k, v]) => `${escapeTag(k)}=${fieldValue(v)}`);
  if (fields.length === 0) throw new Error(`point in ${p.measurement} has no fields`);
  return `${escapeMeasurement(p.measurement)}${tags} ${fields.join(',')} ${p.timeNs}`;
}

/** ms → ns plus a sub-millisecond offset (< 1e6) that keeps distinct points of the same ms apart. */
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
