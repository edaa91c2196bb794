import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { parseRegistry } from '../../common/registry-file.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';

export const DEMO_SITE_PATH = fileURLToPath(new URL('../../config/demo-site.json', import.meta.url));

let cached: RegistryIndex | undefined;
/** The demo site registry, parsed once per test file. */
export function demoRegistry(): RegistryIndex {
  cached ??= parseRegistry(readFileSync(DEMO_SITE_PATH, 'utf8'), DEMO_SITE_PATH);
  return cached;
}

export function demoSecret(id: string): string {
  return `demo-${id}`;
}
