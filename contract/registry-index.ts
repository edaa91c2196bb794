import { homeKind, type Device, type Home, type Provider, type Resident, type Room, type ServiceAccount, type SiteRegistry, type User } from './registry.ts';

/** Read-only lookups over a validated registry. Pure: built once at start, shared by reference. */
export interface RegistryIndex {
  readonly site: SiteRegistry;
  home(id: string): Home | undefined;
  room(homeId: string, roomId: string): (Room & { floorId: string; floorName: string; floorNameEn: string }) | undefined;
  device(id: string): Device | undefined;
  resident(id: string): Resident | undefined;
  service(id: string): ServiceAccount | undefined;
  user(username: string): User | undefined;
  devicesOfHome(homeId: string): readonly Device[];
  devicesOfRoom(homeId: string, roomId: string): readonly Device[];
  residentsOfHome(homeId: string): readonly Resident[];
  devicesOfResident(residentId: string): readonly Device[];
  /** Issue 15: a home-care provider, and the ids of the households it serves (registry order). */
  provider(id: string): Provider | undefined;
  householdsOfProvider(providerId: string): readonly string[];
}

/** Checks the cross-references a schema cannot express. Returns human-readable problems. */
export function registryProblems(site: SiteRegistry): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const unique = (what: string, id: string): void => {
    const key = `${what}:${id}`;
    if (seen.has(key)) problems.push(`duplicate ${what} id "${id}"`);
    seen.add(key);
  };
  const rooms = new Map<string, Set<string>>();
  for (const home of site.homes) {
    unique('home', home.id);
    const set = new Set<string>();
    rooms.set(home.id, set);
    for (const floor of home.floors) for (const room of floor.rooms) {
      if (set.has(room.id)) problems.push(`home "${home.id}": duplicate room id "${room.id}"`);
      set.add(room.id);
    }
    for (const floor of home.floors) for (const room of floor.rooms) for (const adj of room.adjacent) {
      if (!set.has(adj)) problems.push(`home "${home.id}" room "${room.id}": adjacent room "${adj}" does not exist`);
    }
  }
  // Issue 15: providers, and households each served by a known provider.
  const providers = new Set<string>();
  for (const p of site.providers ?? []) {
    unique('provider', p.id);
    providers.add(p.id);
    if (!knownTimeZone(p.timezone)) problems.push(`provider "${p.id}": unknown time zone "${p.timezone}"`);
    const people = new Set(p.people.map((x) => x.id));
    for (const sh of p.shifts) for (const id of sh.people) if (!people.has(id)) problems.push(`provider "${p.id}" shift "${sh.id}": unknown person "${id}"`);
  }
  for (const home of site.homes) {
    if (homeKind(home) === 'household') {
      if (home.providerId === undefined) problems.push(`household "${home.id}": needs a providerId (the home-care provider responsible)`);
      else if (!providers.has(home.providerId)) problems.push(`household "${home.id}": unknown provider "${home.providerId}"`);
      const family = new Set<string>();
      for (const c of home.familyContacts ?? []) {
        if (family.has(c.id)) problems.push(`household "${home.id}": duplicate family contact id "${c.id}"`);
        family.add(c.id);
      }
    } else if (home.providerId !== undefined || home.familyContacts !== undefined) {
      problems.push(`home "${home.id}": providerId and familyContacts are for kind household only`);
    }
  }
  const residentIds = new Set(site.residents.map((r) => r.id));
  // Device ids, service ids and usernames share the MQTT username space.
  for (const d of site.devices) {
    unique('account', d.id);
    if (!rooms.get(d.homeId)?.has(d.roomId)) problems.push(`device "${d.id}": room "${d.roomId}" not in home "${d.homeId}"`);
    if (d.residentId !== undefined && !residentIds.has(d.residentId)) problems.push(`device "${d.id}": unknown resident "${d.residentId}"`);
  }
  for (const s of site.services) unique('account', s.id);
  for (const r of site.residents) {
    unique('resident', r.id);
    if (!rooms.get(r.homeId)?.has(r.roomId)) problems.push(`resident "${r.id}": room "${r.roomId}" not in home "${r.homeId}"`);
  }
  for (const u of site.users) {
    unique('user', u.username);
    if ((u.role === 'staff' || u.role === 'director') && u.homeId === undefined) problems.push(`user "${u.username}": role ${u.role} needs a homeId`);
    if (u.homeId !== undefined && !rooms.has(u.homeId)) problems.push(`user "${u.username}": unknown home "${u.homeId}"`);
    // Issue 15: a provider's user sees exactly that provider's households, so it names the provider
    // and no home; no other role carries a providerId (it would silently widen nothing or confuse).
    if (u.role === 'provider') {
      if (u.providerId === undefined) problems.push(`user "${u.username}": role provider needs a providerId`);
      else if (!providers.has(u.providerId)) problems.push(`user "${u.username}": unknown provider "${u.providerId}"`);
      if (u.homeId !== undefined) problems.push(`user "${u.username}": role provider takes a providerId, not a homeId`);
    } else if (u.providerId !== undefined) problems.push(`user "${u.username}": providerId is only for role provider, not ${u.role}`);
  }
  // Issue 15 (additive): one roster per known home, shifts naming only the roster's people.
  for (const r of site.rosters ?? []) {
    unique('roster', r.homeId);
    if (!rooms.has(r.homeId)) problems.push(`roster: unknown home "${r.homeId}"`);
    if (!knownTimeZone(r.timezone)) problems.push(`roster "${r.homeId}": unknown time zone "${r.timezone}"`);
    const people = new Set(r.people.map((p) => p.id));
    for (const sh of r.shifts) for (const id of sh.people) if (!people.has(id)) problems.push(`roster "${r.homeId}" shift "${sh.id}": unknown person "${id}"`);
  }
  return problems;
}

/**
 * Whether the IANA zone is known to this runtime. A misspelled zone ("Asia/Shangai") would make
 * "who is on duty now" throw at every alarm of that home, so the registry refuses it at load.
 */
function knownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function groupBy<T>(items: readonly T[], key: (t: T) => string | undefined): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    if (k === undefined) continue;
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}

export function indexRegistry(site: SiteRegistry): RegistryIndex {
  const homes = new Map(site.homes.map((h) => [h.id, h]));
  // Adjoining is symmetric: a room lists its neighbours, and the index adds every room that lists
  // it, so `room().adjacent` is the same whichever side the registry wrote. Two-detector confirmation
  // (alerts/rules/fire/confirm.ts) read only the alarming room's own list: with r101 listing r102
  // but not back, a fire was confirmed if r101's detector alarmed second and not if r102's did.
  // The room's own list first (its order kept), then the rooms that list it; never itself.
  const listedBy = groupBy(
    site.homes.flatMap((h) => h.floors.flatMap((f) => f.rooms.flatMap((r) => r.adjacent.map((a) => ({ key: `${h.id}/${a}`, room: r.id }))))),
    (x) => x.key,
  );
  const rooms = new Map<string, Room & { floorId: string; floorName: string; floorNameEn: string }>();
  for (const h of site.homes) for (const f of h.floors) for (const r of f.rooms) {
    const key = `${h.id}/${r.id}`;
    const adjacent = [...new Set([...r.adjacent, ...(listedBy.get(key) ?? []).map((x) => x.room)])].filter((id) => id !== r.id);
    rooms.set(key, { ...r, adjacent, floorId: f.id, floorName: f.name, floorNameEn: f.nameEn });
  }
  const devices = new Map(site.devices.map((d) => [d.id, d]));
  const residents = new Map(site.residents.map((r) => [r.id, r]));
  const services = new Map(site.services.map((s) => [s.id, s]));
  const users = new Map(site.users.map((u) => [u.username, u]));
  const byHome = groupBy(site.devices, (d) => d.homeId);
  const byRoom = groupBy(site.devices, (d) => `${d.homeId}/${d.roomId}`);
  const byResident = groupBy(site.devices, (d) => d.residentId);
  const residentsByHome = groupBy(site.residents, (r) => r.homeId);
  const providers = new Map((site.providers ?? []).map((p) => [p.id, p]));
  const householdsBy = groupBy(
    site.homes.filter((h) => homeKind(h) === 'household'),
    (h) => h.providerId,
  );
  const householdIds = new Map([...householdsBy].map(([p, hs]) => [p, hs.map((h) => h.id)]));
  return {
    site,
    home: (id) => homes.get(id),
    room: (homeId, roomId) => rooms.get(`${homeId}/${roomId}`),
    device: (id) => devices.get(id),
    resident: (id) => residents.get(id),
    service: (id) => services.get(id),
    user: (username) => users.get(username),
    devicesOfHome: (homeId) => byHome.get(homeId) ?? [],
    devicesOfRoom: (homeId, roomId) => byRoom.get(`${homeId}/${roomId}`) ?? [],
    residentsOfHome: (homeId) => residentsByHome.get(homeId) ?? [],
    devicesOfResident: (residentId) => byResident.get(residentId) ?? [],
    provider: (id) => providers.get(id),
    householdsOfProvider: (providerId) => householdIds.get(providerId) ?? [],
  };
}
