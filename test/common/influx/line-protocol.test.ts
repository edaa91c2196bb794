import { describe, expect, it } from 'vitest';
import { escapeKey, escapeMeasurement, fieldFloat, fieldInt, fieldString, msToNs, nsTime, toLine } from '../../../common/influx/line-protocol.ts';
import { InfluxError } from '../../../common/influx/errors.ts';

/** The one line-protocol encoder, alone (no I/O). What InfluxDB makes of its output: adapter.test.ts. */

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof InfluxError ? err.code : `not an InfluxError: ${String(err)}`;
  }
  return undefined;
}

describe('line protocol escaping (InfluxDB 1.x line protocol reference)', () => {
  it('escapes tag keys/values and field keys: comma, equals, space', () => {
    expect(escapeKey('a b,c=d')).toBe('a\\ b\\,c\\=d');
    expect(escapeKey('plain')).toBe('plain');
    expect(escapeKey('火災 報知')).toBe('火災\\ 報知');
  });
  it('escapes measurements: comma and space, not equals', () => {
    expect(escapeMeasurement('my m,x=1')).toBe('my\\ m\\,x=1');
  });
  it('quotes string fields, escaping quotes and backslashes, keeping newlines', () => {
    expect(fieldString('say "hi" \\ bye\nnext')).toBe('"say \\"hi\\" \\\\ bye\nnext"');
    // Repeated calls give the same answer (no regex state carried between calls).
    expect(fieldString('"')).toBe('"\\""');
    expect(fieldString('"')).toBe('"\\""');
  });
  it('refuses a newline or backslash in a name or tag, which 1.x cannot carry', () => {
    for (const s of ['line\nbreak', 'cr\rx', 'back\\slash', 'trailing\\']) {
      expect(code(() => escapeKey(s))).toBe('INFLUX_UNENCODABLE');
      expect(code(() => escapeMeasurement(s))).toBe('INFLUX_UNENCODABLE');
    }
  });
  it('writes integers with i and refuses what has no line-protocol form', () => {
    expect(fieldInt(5)).toBe('5i');
    expect(fieldInt(-9_007_199_254_740_991)).toBe('-9007199254740991i');
    expect(fieldInt(2n ** 62n)).toBe('4611686018427387904i');
    expect(fieldFloat(5)).toBe('5');
    expect(fieldFloat(1e21)).toBe('1e+21');
    expect(code(() => fieldInt(1.5))).toBe('INFLUX_UNENCODABLE');
    expect(code(() => fieldInt(2 ** 53))).toBe('INFLUX_UNENCODABLE');
    expect(code(() => fieldFloat(Number.NaN))).toBe('INFLUX_UNENCODABLE');
    expect(code(() => fieldFloat(Number.POSITIVE_INFINITY))).toBe('INFLUX_UNENCODABLE');
  });
});

describe('toLine', () => {
  it('sorts tags, drops empty ones, and types fields', () => {
    const line = toLine({
      measurement: 'alert',
      tags: { state: 'raised', home: 'h01', empty: '', gone: undefined },
      fields: { json: '{"a":"b c"}', version: { int: 3 }, latching: true, value: 1.5, absent: undefined },
      timeNs: nsTime(1000, 42),
    });
    expect(line).toBe('alert,home=h01,state=raised json="{\\"a\\":\\"b c\\"}",version=3i,latching=true,value=1.5 1000000042');
  });
  it('refuses points that would not parse', () => {
    expect(code(() => toLine({ measurement: 'm', tags: {}, fields: {}, timeNs: 1n }))).toBe('INFLUX_UNENCODABLE');
    expect(code(() => toLine({ measurement: 'm', tags: {}, fields: { v: Number.NaN }, timeNs: 1n }))).toBe('INFLUX_UNENCODABLE');
    expect(code(() => toLine({ measurement: 'm', tags: { t: 'a\nb' }, fields: { v: 1 }, timeNs: 1n }))).toBe('INFLUX_UNENCODABLE');
  });
});

describe('time', () => {
  it('is exact beyond 2^53', () => {
    expect(msToNs(1_767_225_600_123)).toBe('1767225600123000000');
    expect(msToNs(0)).toBe('0');
    expect(nsTime(1_767_225_600_123, 3_000_007)).toBe(1_767_225_600_123_000_007n);
  });
});
