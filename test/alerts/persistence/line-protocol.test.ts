import { describe, expect, it } from 'vitest';
import { escapeFieldString, escapeTag, nsTime, toLine } from '../../../alerts/persistence/line-protocol.ts';

describe('line protocol', () => {
  it('escapes tags, field keys and string fields as InfluxDB 1.x requires', () => {
    expect(escapeTag('a b,c=d')).toBe('a\\ b\\,c\\=d');
    expect(escapeTag('line\nbreak')).toBe('line\\ break');
    expect(escapeFieldString('say "hi" \\o/')).toBe('"say \\"hi\\" \\\\o/"');
    const line = toLine({
      measurement: 'alert',
      tags: { state: 'raised', home: 'h01', empty: '' },
      fields: { json: '{"a":"b c"}', version: { int: 3 }, latching: true, value: 1.5 },
      timeNs: nsTime(1000, 42),
    });
    expect(line).toBe('alert,home=h01,state=raised json="{\\"a\\":\\"b c\\"}",version=3i,latching=true,value=1.5 1000000042');
  });

  it('refuses points that would not parse', () => {
    expect(() => toLine({ measurement: 'm', tags: {}, fields: {}, timeNs: 1n })).toThrow(/no fields/);
    expect(() => toLine({ measurement: 'm', tags: {}, fields: { v: Number.NaN }, timeNs: 1n })).toThrow(/not finite/);
  });
});
