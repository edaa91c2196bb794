import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';
import { indexRegistry, type RegistryIndex } from '../contract/registry-index.ts';
import { createEngine, type Engine, type RuleStates } from './engine.ts';
import type { FactSink } from './rules/facts.ts';
import type { Rule, RuleInput, Signal } from './rules/types.ts';
import type { Fact } from './rules/facts.ts';
import { cutText, type CutPart } from './snapshot-text.ts';

/**
 * Alerts partitioned by home (issue 14, docs/scaling.md "Services partitioned by home"). An instance that owns a set of
 * homes runs one rule engine per home, each with its own snapshot file in a state directory the
 * instances share. A home's whole rule state (windows, latches, verification timers) is then one
 * file that belongs to that home, not to an instance: moving the home is the new owner reading that
 * file. Nothing here knows the shape of any rule's state, so a new rule moves with its home for free.
 */

/**
 * The registry as the rules of the given homes see it: their homes, devices and residents only
 * (users and service accounts stay whole: people of any home log in on any node).
 */
export function restrictRegistry(index: RegistryIndex, homes: readonly string[]): RegistryIndex {
  const owned = new Set(homes);
  const site = index.site;
  return indexRegistry({
    ...site,
    homes: site.homes.filter((h) => owned.has(h.id)),
    devices: site.devices.filter((d) => owned.has(d.homeId)),
    residents: site.residents.filter((r) => owned.has(r.homeId)),
  });
}

/** The file of one home's rule state, open alerts, held conditions and incidents. */
export function homeStatePath(dir: string, homeId: string): string {
  return join(dir, `home-${homeId}.json`);
}

/** The home an input concerns; undefined for a tick (every home). */
export function homeOfInput(input: RuleInput): string | undefined {
  if ('device' in input) return input.device.homeId;
  if (input.type === 'care_action') return input.homeId;
  return undefined;
}

export interface HomeEngines extends Engine {
  readonly homes: readonly string[];
  /** One home's states as JSON text (what its file holds): clears that home's dirty flag. */
  snapshotHomeJson(homeId: string): string;
  /** The same as a cut to serialise in slices (Engine.snapshotCut). */
  snapshotHomeCut(homeId: string): CutPart[];
  restoreHome(homeId: string, states: RuleStates): void;
  /** Homes whose state changed since their last snapshot. */
  dirtyHomes(): string[];
  /** Inputs for a home this instance does not own (a stale subscription after a move): dropped, counted. */
  notOwned(): number;
}

export interface HomeEnginesDeps {
  readonly homes: readonly string[];
  readonly registry: RegistryIndex;
  /** The rules of one home's engine (called once per home; rule objects may be shared, they are pure). */
  readonly rulesFor: (homeId: string) => readonly Rule[];
  readonly logger?: Logger;
  readonly onFacts?: FactSink;
}

/**
 * One engine per owned home behind the Engine interface. `snapshot()`/`restore()`/`view()` nest the
 * states by home id (`{ h01: { ruleId: state } }`); the files hold one home each.
 */
export function createHomeEngines(deps: HomeEnginesDeps): HomeEngines {
  const engines = new Map<string, Engine>();
  for (const homeId of deps.homes) {
    engines.set(
      homeId,
      createEngine({
        rules: deps.rulesFor(homeId),
        registry: restrictRegistry(deps.registry, [homeId]),
        ...(deps.logger !== undefined ? { logger: deps.logger.child({ home: homeId }) } : {}),
        ...(deps.onFacts !== undefined ? { onFacts: deps.onFacts } : {}),
      }),
    );
  }
  let notOwned = 0;
  const all = (): Engine[] => [...engines.values()];
  const nested = (of: (e: Engine) => RuleStates): RuleStates => Object.fromEntries([...engines].map(([h, e]) => [h, of(e)]));
  const engineOf = (homeId: string): Engine => {
    const e = engines.get(homeId);
    if (e === undefined) throw new Error(`home ${homeId} is not owned by this instance`);
    return e;
  };

  /** Every home's states nested by home id (`{ h01: { ruleId: state } }`), as a cut to serialise in slices. */
  function cutAll(): CutPart[] {
    const parts: CutPart[] = [];
    let open = '{';
    for (const [h, e] of engines) {
      parts.push(`${open}${JSON.stringify(h)}:`, ...e.snapshotCut());
      open = ',';
    }
    parts.push(open === '{' ? '{}' : '}');
    return parts;
  }

  return {
    homes: [...engines.keys()],
    evaluate(input) {
      const homeId = homeOfInput(input);
      if (homeId === undefined) return all().flatMap((e) => e.evaluate(input));
      const e = engines.get(homeId);
      if (e === undefined) {
        notOwned++;
        return [];
      }
      return e.evaluate(input);
    },
    tick(now) {
      const out: Signal[] = [];
      for (const e of all()) for (const s of e.tick(now)) out.push(s);
      return out;
    },
    snapshot: () => nested((e) => e.snapshot()),
    snapshotCut: cutAll,
    snapshotJson: () => cutText(cutAll()),
    snapshotFragments() {
      const sum = { serialised: 0, reused: 0 };
      for (const e of all()) {
        const f = e.snapshotFragments();
        sum.serialised += f.serialised;
        sum.reused += f.reused;
      }
      return sum;
    },
    view: (ruleIds) => nested((e) => e.view(ruleIds)),
    restore(states) {
      for (const [h, e] of engines) {
        const s = states[h];
        if (typeof s === 'object' && s !== null) e.restore(s as RuleStates);
      }
    },
    resumeFailing(ruleId, homeId) {
      engines.get(homeId)?.resumeFailing(ruleId, homeId);
    },
    failures() {
      const sum: Record<string, number> = {};
      for (const e of all()) for (const [rule, n] of Object.entries(e.failures())) sum[rule] = (sum[rule] ?? 0) + n;
      return sum;
    },
    dirty: () => all().some((e) => e.dirty()),
    standingFacts() {
      const out: Fact[] = [];
      for (const e of all()) for (const f of e.standingFacts()) out.push(f);
      return out;
    },
    factSinkFailures: () => all().reduce((n, e) => n + e.factSinkFailures(), 0),
    deviceClocks: () =>
      all().reduce(
        (sum, e) => {
          const c = e.deviceClocks();
          return { corrected: sum.corrected + c.corrected, changes: sum.changes + c.changes };
        },
        { corrected: 0, changes: 0 },
      ),
    snapshotHomeJson: (homeId) => engineOf(homeId).snapshotJson(),
    snapshotHomeCut: (homeId) => engineOf(homeId).snapshotCut(),
    restoreHome: (homeId, states) => engineOf(homeId).restore(states),
    dirtyHomes: () => [...engines].filter(([, e]) => e.dirty()).map(([h]) => h),
    notOwned: () => notOwned,
  };
}
