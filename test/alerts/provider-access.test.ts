import { describe, expect, it } from 'vitest';
import { canSeeAlert, canSeeHome, ownHomes, seesAllHomes, type Actor } from '../../alerts/access.ts';
import { createTokenService } from '../../alerts/http/token.ts';
import { indexRegistry } from '../../contract/registry-index.ts';
import { demoRegistry } from '../support/registry.ts';

/**
 * Issue 15: a home-care provider's users see exactly that provider's households. The households
 * come from the registry when the token is verified, never from the token: moving a household to
 * another provider, or the user to another provider, takes effect on the next request.
 */

const SECRET = 'a-test-secret-of-at-least-32-characters';
const NOW = Date.UTC(2026, 0, 1);

describe('provider access', () => {
  it("a provider's token resolves to its households; it sees those and nothing else", () => {
    const registry = demoRegistry();
    const tokens = createTokenService(SECRET, 600, registry);
    const { token } = tokens.issue({ username: 'provider-pv01', role: 'provider', providerId: 'pv01' }, NOW);
    const actor = tokens.verify(token, NOW)!;
    expect(actor).toEqual({ username: 'provider-pv01', role: 'provider', providerId: 'pv01', homeIds: ['hh01', 'hh02', 'hh03'] });
    expect(seesAllHomes(actor)).toBe(false);
    expect(ownHomes(actor)).toEqual(['hh01', 'hh02', 'hh03']);
    for (const h of ['hh01', 'hh02', 'hh03']) expect(canSeeHome(actor, h)).toBe(true);
    for (const h of ['hh04', 'hh05', 'h01', 'h09', 'nope']) expect(canSeeHome(actor, h)).toBe(false);
    expect(canSeeAlert(actor, { homeId: 'hh04' })).toBe(false);
  });

  it('a token claiming homes it was not given gets nothing from them; a forged homeIds claim is ignored', () => {
    const tokens = createTokenService(SECRET, 600, demoRegistry());
    // Even an actor with a homeId (never issued for a provider) is refused: the registry user has none.
    const { token } = tokens.issue({ username: 'provider-pv01', role: 'provider', providerId: 'pv01', homeId: 'h01' }, NOW);
    expect(tokens.verify(token, NOW)).toBeUndefined();
    // homeIds are not signed into the token at all: what counts is the registry now.
    const { token: t2 } = tokens.issue({ username: 'provider-pv01', role: 'provider', providerId: 'pv01', homeIds: ['h01', 'hh04'] }, NOW);
    expect(tokens.verify(t2, NOW)?.homeIds).toEqual(['hh01', 'hh02', 'hh03']);
  });

  it('moving a household to another provider, or the user to another provider, takes effect on the next verification', () => {
    const site = structuredClone(demoRegistry().site);
    const issuing = createTokenService(SECRET, 600, indexRegistry(site));
    const { token } = issuing.issue({ username: 'provider-pv01', role: 'provider', providerId: 'pv01' }, NOW);
    site.homes.find((h) => h.id === 'hh03')!.providerId = 'pv02';
    expect(createTokenService(SECRET, 600, indexRegistry(site)).verify(token, NOW)?.homeIds).toEqual(['hh01', 'hh02']);
    site.users.find((u) => u.username === 'provider-pv01')!.providerId = 'pv02';
    expect(createTokenService(SECRET, 600, indexRegistry(site)).verify(token, NOW)).toBeUndefined();
  });

  it('without a registry (development) a provider token sees no household; staff keep their one home', () => {
    const tokens = createTokenService(SECRET, 600);
    const p = tokens.verify(tokens.issue({ username: 'x', role: 'provider', providerId: 'pv01' }, NOW).token, NOW)!;
    expect(p.homeIds).toEqual([]);
    expect(canSeeHome(p, 'hh01')).toBe(false);
    const staff: Actor = { username: 's', role: 'staff', homeId: 'h01' };
    expect(ownHomes(staff)).toEqual(['h01']);
    expect(canSeeHome(staff, 'hh01')).toBe(false);
    // A staff actor that somehow carried homeIds still sees only its home.
    expect(canSeeHome({ ...staff, homeIds: ['hh01'] }, 'hh01')).toBe(false);
  });
});
