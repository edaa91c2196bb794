import { describe, expect, it } from 'vitest';
import { parseRegistry, RegistryError } from '../../common/registry-file.ts';
import { registryProblems } from '../../contract/registry-index.ts';
import { homeKind, type SiteRegistry } from '../../contract/registry.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * Issue 15 "elders who live at home": households beside care homes, providers, provider users. The
 * cross-references a schema cannot express are refused with the offending id named.
 */

const site = (): SiteRegistry => structuredClone(demoRegistry().site);
const household = (s: SiteRegistry, id = 'hh01') => s.homes.find((h) => h.id === id)!;

describe('registry: households and providers', () => {
  it('the demo site has care homes and households; each household names its provider, and the index lists them per provider', () => {
    const r = demoRegistry();
    expect(r.site.homes.filter((h) => homeKind(h) === 'care-home').map((h) => h.id)).toHaveLength(9);
    expect(r.site.homes.filter((h) => homeKind(h) === 'household').map((h) => h.id)).toEqual(['hh01', 'hh02', 'hh03', 'hh04', 'hh05']);
    expect(r.householdsOfProvider('pv01')).toEqual(['hh01', 'hh02', 'hh03']);
    expect(r.householdsOfProvider('pv02')).toEqual(['hh04', 'hh05']);
    expect(r.householdsOfProvider('nobody')).toEqual([]);
    expect(r.provider('pv01')?.people.length).toBeGreaterThan(0);
    // The same devices as in a care home: vital signs, bed, call button, smoke.
    expect(r.devicesOfHome('hh01').map((d) => d.kind).sort()).toEqual(['bed_sensor', 'heat_detector', 'nurse_call', 'smoke_detector', 'smoke_detector', 'vital_signs_monitor']);
    expect(r.user('provider-pv01')).toMatchObject({ role: 'provider', providerId: 'pv01' });
    expect(registryProblems(r.site)).toEqual([]);
  });

  it('a registry without kind is all care homes (backward compatible)', () => {
    const s = site();
    const care = new Set(s.homes.filter((h) => h.kind === undefined).map((h) => h.id));
    const { providers: _dropped, ...rest } = s;
    const old: SiteRegistry = {
      ...rest,
      homes: s.homes.filter((h) => care.has(h.id)),
      devices: s.devices.filter((d) => care.has(d.homeId)),
      residents: s.residents.filter((r) => care.has(r.homeId)),
      users: s.users.filter((u) => u.role !== 'provider'),
    };
    expect(registryProblems(old)).toEqual([]);
    expect(homeKind(old.homes[0]!)).toBe('care-home');
  });

  it('refuses a household without a provider, or with an unknown one', () => {
    const s = site();
    delete household(s, 'hh01').providerId;
    household(s, 'hh02').providerId = 'pv99';
    expect(registryProblems(s)).toEqual([
      'household "hh01": needs a providerId (the home-care provider responsible)',
      'household "hh02": unknown provider "pv99"',
    ]);
  });

  it('refuses a provider user without providerId, with an unknown one, or with a homeId; and providerId on other roles', () => {
    const s = site();
    const pw = s.users[0]!.passwordHash;
    s.users.push(
      { username: 'p-none', displayName: 'x', role: 'provider', passwordHash: pw },
      { username: 'p-unknown', displayName: 'x', role: 'provider', providerId: 'pv99', passwordHash: pw },
      { username: 'p-home', displayName: 'x', role: 'provider', providerId: 'pv01', homeId: 'hh01', passwordHash: pw },
      { username: 's-prov', displayName: 'x', role: 'staff', homeId: 'h01', providerId: 'pv01', passwordHash: pw },
    );
    expect(registryProblems(s)).toEqual([
      'user "p-none": role provider needs a providerId',
      'user "p-unknown": unknown provider "pv99"',
      'user "p-home": role provider takes a providerId, not a homeId',
      'user "s-prov": providerId is only for role provider, not staff',
    ]);
  });

  it('refuses duplicate providers, a shift naming an unknown caregiver, duplicate family contacts, and household fields on a care home', () => {
    const s = site();
    s.providers!.push(structuredClone(s.providers![0]!));
    s.providers![1]!.shifts[0]!.people = ['ghost'];
    const hh = household(s);
    hh.familyContacts = [...hh.familyContacts!, hh.familyContacts![0]!];
    household(s, 'h01').providerId = 'pv01';
    expect(registryProblems(s).sort()).toEqual([
      'duplicate provider id "pv01"',
      'home "h01": providerId and familyContacts are for kind household only',
      'household "hh01": duplicate family contact id "hh01-fam1"',
      'provider "pv02" shift "day": unknown person "ghost"',
    ]);
  });

  it('the loader refuses a bad kind or family severity by schema, naming the path, and applies the family default (critical)', () => {
    const s = site();
    const bad = structuredClone(s) as unknown as { homes: Array<Record<string, unknown>> };
    bad.homes[0]!.kind = 'flat';
    expect(() => parseRegistry(JSON.stringify(bad), 'bad.json')).toThrow(RegistryError);
    expect(() => parseRegistry(JSON.stringify(bad), 'bad.json')).toThrow(/\/homes\/0\/kind/);
    const noSev = structuredClone(s) as unknown as { homes: Array<{ id: string; familyContacts?: Array<Record<string, unknown>> }> };
    delete noSev.homes.find((h) => h.id === 'hh01')!.familyContacts![0]!.severities;
    expect(parseRegistry(JSON.stringify(noSev), 'ok.json').home('hh01')?.familyContacts?.[0]?.severities).toEqual(['critical']);
  });
});
