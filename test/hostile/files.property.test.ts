import { readFileSync } from 'node:fs';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AlertsConfigSchema } from '../../alerts/config.ts';
import { BrokerEnv } from '../../broker/config.ts';
import { ConfigError, envName, loadConfig } from '../../common/config.ts';
import { RegistryError, parseRegistry } from '../../common/registry-file.ts';
import { SimEnv } from '../../device-sim/config.ts';
import { DEMO_SITE_PATH } from '../support/registry.ts';

/**
 * Issue 12 "Hostile input": the files a process reads at start. A registry document
 * (common/registry-file.ts parseRegistry) and the environment (common/config.ts loadConfig, with
 * `*_FILE` secrets) give a valid value or one clear error of their own class and stable code
 * (REGISTRY_INVALID, CONFIG_INVALID), never a TypeError from deep inside, never a hang.
 */
const DEMO = readFileSync(DEMO_SITE_PATH, 'utf8');
const demo = JSON.parse(DEMO) as Record<string, unknown>;

function registryOutcome(text: string): 'ok' | 'invalid' {
  try {
    const index = parseRegistry(text, 'fuzzed.json');
    // What is accepted is usable: every device of the index can be looked up by its id.
    for (const d of index.site.devices) expect(index.device(d.id)).toBeDefined();
    return 'ok';
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).code).toBe('REGISTRY_INVALID');
    expect((err as Error).message).toMatch(/^fuzzed\.json: /);
    // Bounded: the message names at most 10 problems, never the whole document.
    expect((err as Error).message.length).toBeLessThan(20_000);
    return 'invalid';
  }
}

/** A path into the demo document and a hostile value to put there. */
const paths = (): fc.Arbitrary<Array<string | number>> => {
  const at = (v: unknown, depth: number): fc.Arbitrary<Array<string | number>> => {
    if (depth === 0 || typeof v !== 'object' || v === null) return fc.constant([]);
    const keys: Array<string | number> = Array.isArray(v) ? v.map((_, i) => i).slice(0, 5) : Object.keys(v);
    if (keys.length === 0) return fc.constant([]);
    return fc.constantFrom(...keys).chain((k) => fc.oneof(fc.constant<Array<string | number>>([k]), at((v as Record<string | number, unknown>)[k], depth - 1).map((rest) => [k, ...rest])));
  };
  return at(demo, 5);
};

function setAt(doc: unknown, path: ReadonlyArray<string | number>, value: unknown, remove: boolean): unknown {
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let node: Record<string | number, unknown> = copy;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (last === undefined) return value;
  if (remove) delete node[last];
  else node[last] = value;
  return copy;
}

describe('registry files (common/registry-file.ts)', () => {
  it('the demo site is valid (the mutations below start from a valid document)', () => {
    expect(registryOutcome(DEMO)).toBe('ok');
  });

  it('any value at any place, or a removed key, gives a registry or REGISTRY_INVALID', () => {
    const value = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('', 'h01', 'h01-sd-f1-corridor', 'staff-h01', '__proto__', 'a'.repeat(1000), -1, 1e309, null, [], {}));
    fc.assert(
      fc.property(paths(), value, fc.boolean(), (path, v, remove) => {
        registryOutcome(JSON.stringify(setAt(demo, path, v, remove)) ?? 'null');
      }),
      // Each run parses the whole demo site (~45 ms).
      { numRuns: 100 },
    );
  });

  it('arbitrary text, truncated documents and flipped bytes give REGISTRY_INVALID', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.nat({ max: DEMO.length - 1 }).map((n) => DEMO.slice(0, n)),
          fc.tuple(fc.nat({ max: DEMO.length - 1 }), fc.string({ minLength: 1, maxLength: 3 })).map(([i, s]) => DEMO.slice(0, i) + s + DEMO.slice(i + 1)),
          fc.constantFrom('{"__proto__":{"polluted":1}}', '[]', 'null', '1e309', '"x"', '['.repeat(100_000)),
        ),
        (text) => {
          registryOutcome(text);
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('configuration (common/config.ts loadConfig)', () => {
  const schemas: Array<[string, TObject]> = [
    ['alerts', AlertsConfigSchema],
    ['broker', BrokerEnv],
    ['sim', SimEnv],
  ];
  const hostileText = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom('', ' ', '0', '-1', '1e309', 'NaN', 'Infinity', '0x10', '65536', 'true', 'off', '\u0000', '../../etc/passwd', 'demo-x', 'a'.repeat(5000)),
  );

  for (const [name, schema] of schemas) {
    it(`${name}: any environment gives a frozen, schema-valid config or CONFIG_INVALID naming the variables`, () => {
      const keys = Object.keys(schema.properties);
      const env = fc.dictionary(fc.constantFrom(...keys.map(envName), ...keys.map((k) => `${envName(k)}_FILE`)), hostileText, { maxKeys: 8 });
      const files = fc.dictionary(fc.string({ maxLength: 10 }), hostileText, { maxKeys: 3 });
      fc.assert(
        fc.property(env, files, (e, fileContents) => {
          const readFile = (path: string): string => {
            const content = fileContents[path];
            if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
            return content;
          };
          let config: Readonly<Record<string, unknown>>;
          try {
            config = loadConfig(schema, e, { readFile });
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(ConfigError);
            expect((err as ConfigError).code).toBe('CONFIG_INVALID');
            for (const p of (err as ConfigError).problems) expect(p).toMatch(/^CAREWATCH_[A-Z0-9_]+/);
            // A secret's value is never echoed (it would end up in a log). A non-secret variable's bad
            // value is echoed on purpose, so a value that one also holds is not the secret's echo.
            const isSecret = (k: string): boolean => /PASSWORD|SECRET|TOKEN(?!_TTL)/.test(k) && !k.endsWith('_FILE');
            const echoedOnPurpose = new Set(Object.entries(e).filter(([k]) => !isSecret(k)).map(([, v]) => v));
            for (const [k, v] of Object.entries(e)) if (isSecret(k) && v !== undefined && v.length >= 6 && !/^[A-Z_ ]+$/.test(v) && !echoedOnPurpose.has(v)) expect((err as Error).message).not.toContain(v);
            return;
          }
          expect(Object.isFrozen(config)).toBe(true);
          const partial = { ...config };
          for (const k of Object.keys(partial)) if (!Value.Check(schema.properties[k]!, partial[k])) throw new Error(`${k}=${JSON.stringify(partial[k])} passed but is invalid`);
        }),
        { numRuns: 300 },
      );
    });
  }
});
