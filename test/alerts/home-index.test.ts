import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HomeIndexedMap } from '../../alerts/home-index.ts';
import { RUNS } from './rules/sampling.ts';

interface Rec {
  readonly home: string;
  readonly n: number;
}

const op = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 12 }), home: fc.constantFrom('h01', 'h02', 'h03'), n: fc.integer() }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 12 }) }),
  fc.record({ kind: fc.constant('clear' as const) }),
);

describe('HomeIndexedMap', () => {
  it('lists a home\'s records exactly as filtering the whole map by home does, in the same order, after any sequence of changes', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const m = new HomeIndexedMap<number, Rec>((r) => r.home);
        const model = new Map<number, Rec>();
        for (const o of ops) {
          if (o.kind === 'set') {
            // Records never change home (alerts and incidents keep theirs): a key set again keeps it.
            const home = model.get(o.key)?.home ?? o.home;
            m.set(o.key, { home, n: o.n });
            model.set(o.key, { home, n: o.n });
          } else if (o.kind === 'delete') expect(m.delete(o.key)).toBe(model.delete(o.key));
          else {
            m.clear();
            model.clear();
          }
          expect([...m.entries()]).toEqual([...model.entries()]);
          for (const h of ['h01', 'h02', 'h03', 'h99']) expect([...m.ofHome(h)]).toEqual([...model.values()].filter((r) => r.home === h));
        }
      }),
      { numRuns: RUNS },
    );
  });
});
