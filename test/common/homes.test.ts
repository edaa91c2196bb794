import { describe, expect, it } from 'vitest';
import { HOMES_PATTERN, deviceFilters, homeSessionId, parseHomes } from '../../common/homes.ts';
import { FILTERS } from '../../contract/topics.ts';
import { demoRegistry } from '../support/registry.ts';

/** Issue 14: CAREWATCH_HOMES and the subscriptions it gives (docs/scaling.md "Services partitioned by home"). */
describe('owned homes', () => {
  const registry = demoRegistry();

  it('parses the list, drops duplicates, and refuses homes not in the registry', () => {
    expect(parseHomes(undefined, registry)).toBeUndefined();
    expect(parseHomes('h01,h03,h01', registry)).toEqual(['h01', 'h03']);
    expect(() => parseHomes('h01,h99,hx', registry)).toThrow('CAREWATCH_HOMES names homes not in the registry: h99, hx');
    expect(new RegExp(HOMES_PATTERN).test('h01,h02')).toBe(true);
    for (const bad of ['', 'h01,', 'h01,,h02', 'h01 h02', 'h0+', 'h01/#']) expect(new RegExp(HOMES_PATTERN).test(bad)).toBe(false);
  });

  it("subscribes to the owned homes' devices only, or to every home when unset", () => {
    expect(deviceFilters(['event', 'status'], undefined)).toEqual([FILTERS.event, FILTERS.status]);
    expect(deviceFilters(['telemetry', 'event'], ['h01', 'h02'])).toEqual([
      'carewatch/v1/h01/+/telemetry',
      'carewatch/v1/h01/+/event',
      'carewatch/v1/h02/+/telemetry',
      'carewatch/v1/h02/+/event',
    ]);
  });

  it("names a home's session after the home, under the service's account", () => {
    expect(homeSessionId('svc-ingest', 'h02')).toBe('svc-ingest-home-h02');
  });
});
