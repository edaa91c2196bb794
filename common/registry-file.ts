import { readFile } from 'node:fs/promises';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { SiteRegistry } from '../contract/registry.ts';
import { indexRegistry, registryProblems, type RegistryIndex } from '../contract/registry-index.ts';

const check = TypeCompiler.Compile(SiteRegistry);

/** Whether a schema, or any schema inside it, declares a `default` (TypeBox schemas are JSON Schema objects). */
export function declaresDefault(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  if (Object.hasOwn(schema, 'default')) return true;
  return Object.values(schema).some(declaresDefault);
}

/**
 * The registry's top-level properties whose schemas declare a default somewhere inside: only these
 * are walked by `Value.Default`. The devices declare none and are most of a large registry; walking
 * them was 0.2–0.4 s of every process's start-up at 20,000 devices (more than parsing the JSON), and
 * the broker's start-up is time its reconnecting devices wait (docs/broker.md "Reconnect after a crash").
 */
const WITH_DEFAULTS = Object.entries(SiteRegistry.properties).filter(([, schema]) => declaresDefault(schema));

/** `Value.Default(SiteRegistry, json)`, without walking the properties that have no default to fill. */
export function registryWithDefaults(json: unknown): unknown {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return Value.Default(SiteRegistry, json);
  const out: Record<string, unknown> = { ...(json as Record<string, unknown>) };
  for (const [key, schema] of WITH_DEFAULTS) {
    const value = Value.Default(schema, out[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

export class RegistryError extends Error {
  readonly code = 'REGISTRY_INVALID';
}

/** Parses and validates a registry document; throws RegistryError listing every problem. */
export function parseRegistry(text: string, source: string): RegistryIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RegistryError(`${source}: not JSON: ${(err as Error).message}`);
  }
  const withDefaults = registryWithDefaults(json);
  if (!check.Check(withDefaults)) {
    const errs = [...check.Errors(withDefaults)].slice(0, 10).map((e) => `${e.path}: ${e.message}`);
    throw new RegistryError(`${source}: ${errs.join('; ')}`);
  }
  const site = withDefaults as SiteRegistry;
  const problems = registryProblems(site);
  if (problems.length > 0) throw new RegistryError(`${source}: ${problems.slice(0, 10).join('; ')}`);
  return indexRegistry(site);
}

export async function loadRegistry(path: string): Promise<RegistryIndex> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new RegistryError(`cannot read registry ${path}: ${(err as Error).message}`);
  }
  return parseRegistry(text, path);
}
