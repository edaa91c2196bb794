import { readFile } from 'node:fs/promises';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { SiteRegistry } from '../contract/registry.ts';
import { indexRegistry, registryProblems, type RegistryIndex } from '../contract/registry-index.ts';

const check = TypeCompiler.Compile(SiteRegistry);

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
  const withDefaults = Value.Default(SiteRegistry, json);
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
