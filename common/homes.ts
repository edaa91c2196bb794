import type { RegistryIndex } from '../contract/registry-index.ts';
import { FILTERS, homeDeviceFilter } from '../contract/topics.ts';

/**
 * CAREWATCH_HOMES: the homes one instance of ingest or alerts owns, comma-separated home ids
 * ("h01,h02"). Unset means every home of the registry (one instance, as before partitioning).
 * docs/scaling.md "Services partitioned by home".
 */
export const HOMES_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(,[A-Za-z0-9][A-Za-z0-9_-]{0,63})*$';

/**
 * The owned homes, checked against the registry: an unknown id is a configuration mistake that would
 * leave a real home unwatched or watch nothing, so it fails start with the ids named. A duplicate is
 * dropped. Undefined text → undefined (all homes).
 */
export function parseHomes(text: string | undefined, registry: RegistryIndex): readonly string[] | undefined {
  if (text === undefined) return undefined;
  const ids = [...new Set(text.split(',').map((s) => s.trim()).filter((s) => s.length > 0))];
  if (ids.length === 0) throw new Error('CAREWATCH_HOMES is empty: list the home ids this instance owns, or unset it for all homes');
  const unknown = ids.filter((id) => registry.home(id) === undefined);
  if (unknown.length > 0) throw new Error(`CAREWATCH_HOMES names homes not in the registry: ${unknown.join(', ')}`);
  return ids;
}

type Channel = 'telemetry' | 'event' | 'status';

/** The subscription filters for these channels: every home's (FILTERS) or only the owned homes'. */
export function deviceFilters(channels: readonly Channel[], homes: readonly string[] | undefined): string[] {
  return homes === undefined ? channels.map((c) => FILTERS[c]) : homes.flatMap((h) => channels.map((c) => homeDeviceFilter(h, c)));
}

/**
 * The persistent MQTT session of one home in a service (`svc-ingest-home-h02`): named after the home,
 * not the instance, so it moves with the home. The broker keeps queueing the home's messages for it
 * while no instance has it connected (between the old owner's stop and the new owner's start), and
 * the new owner receives them [MQTT-3.1.2-4]. Client ids of services start with `{username}-`
 * (docs/architecture.md "Accounts").
 */
export function homeSessionId(username: string, homeId: string): string {
  return `${username}-home-${homeId}`;
}
