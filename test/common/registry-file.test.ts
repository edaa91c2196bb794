import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { declaresDefault, parseRegistry, registryWithDefaults } from '../../common/registry-file.ts';
import { Device, Home, SiteRegistry } from '../../contract/registry.ts';
import { DEMO_SITE_PATH } from '../support/registry.ts';

/**
 * The registry's defaults are filled only where its schema declares some: the same document as
 * TypeBox's full `Value.Default` walk, without visiting the devices (a province's registry is mostly
 * devices, and every process parses it at start).
 */
const DEMO = readFileSync(DEMO_SITE_PATH, 'utf8');
const DEFAULTED = ['adjacent', 'hypercapnic', 'fallRisk', 'turnIntervalMin', 'severities'];

/** The demo document with each defaulted key removed where `drop` says so (in document order). */
function stripped(drop: (n: number) => boolean): unknown {
  let n = 0;
  return JSON.parse(DEMO, function (this: Record<string, unknown>, key, value: unknown) {
    return DEFAULTED.includes(key) && drop(n++) ? undefined : value;
  });
}

describe('registry defaults', () => {
  it('knows which schemas declare a default: rooms and residents do, devices do not', () => {
    expect(declaresDefault(Home)).toBe(true);
    expect(declaresDefault(Device)).toBe(false);
    expect(declaresDefault({ type: 'object', properties: { a: { anyOf: [{ type: 'string', default: 'x' }] } } })).toBe(true);
    expect(declaresDefault({ type: 'array', items: { type: 'number' } })).toBe(false);
  });

  it('fills exactly what Value.Default over the whole registry fills', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }), (mask) => {
        const drop = (n: number): boolean => mask[n % mask.length] === true;
        expect(registryWithDefaults(stripped(drop))).toEqual(Value.Default(SiteRegistry, stripped(drop)));
      }),
      { numRuns: 40 },
    );
    // Not an object at the top: left to the check, as before.
    for (const odd of [null, 3, 'x', [1]]) expect(registryWithDefaults(odd)).toEqual(Value.Default(SiteRegistry, odd));
  });

  it('does not visit the devices', () => {
    const doc = stripped(() => true) as { devices: object[] };
    let reads = 0;
    doc.devices = doc.devices.map(
      (d) =>
        new Proxy(d, {
          get: (t, k, r) => (reads++, Reflect.get(t, k, r)),
          ownKeys: (t) => (reads++, Reflect.ownKeys(t)),
        }),
    );
    const out = registryWithDefaults(doc) as { homes: Array<{ floors: Array<{ rooms: Array<{ adjacent?: unknown }> }> }> };
    expect(reads).toBe(0);
    // … while the rooms still got theirs.
    expect(out.homes[0]?.floors[0]?.rooms[0]?.adjacent).toEqual([]);
    // And the parsed registry is the one the full walk gives.
    expect(parseRegistry(JSON.stringify(stripped(() => true)), 'x').site).toEqual(Value.Default(SiteRegistry, stripped(() => true)));
  });
});
