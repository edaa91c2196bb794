import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { parseRegistry } from '../../common/registry-file.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import type { Device } from '../../contract/registry.ts';

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

/**
 * The demo site cut down to some of its homes (their rooms, devices, residents, rosters and staff),
 * for tests whose cost or meaning depends on how many homes a rule visits.
 */
export function demoSubRegistry(homeIds: readonly string[]): RegistryIndex {
  const keep = new Set(homeIds);
  const site = JSON.parse(readFileSync(DEMO_SITE_PATH, 'utf8')) as Record<string, unknown>;
  const inKept = (x: unknown): boolean => keep.has((x as { homeId?: unknown }).homeId as string);
  const list = (k: string): unknown[] => (Array.isArray(site[k]) ? (site[k] as unknown[]) : []);
  const sub = {
    ...site,
    homes: list('homes').filter((h) => keep.has((h as { id: string }).id)),
    devices: list('devices').filter(inKept),
    residents: list('residents').filter(inKept),
    rosters: list('rosters').filter(inKept),
    // Users of no home (the bureau, administrators, providers) stay; other homes' staff go.
    users: list('users').filter((u) => (u as { homeId?: unknown }).homeId === undefined || inKept(u)),
  };
  return parseRegistry(JSON.stringify(sub), `${DEMO_SITE_PATH} (${homeIds.join(', ')})`);
}

/**
 * Hands out the demo site's devices one at a time, so each test of a file gets fresh ones and the
 * retained statuses of earlier tests never confuse it.
 */
export function deviceTaker(): () => Device {
  const devices = demoRegistry().site.devices;
  let next = 0;
  return () => {
    const d = devices[next++];
    if (d === undefined) throw new Error('out of demo devices');
    return d;
  };
}
