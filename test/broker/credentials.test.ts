import { describe, expect, it } from 'vitest';
import { DEVICE_COST, hashSecret, verifySecret } from '../../common/secrets.ts';
import { createCredentialVerifier } from '../../broker/credentials.ts';
import { filterWithin, topicMatches } from '../../broker/topic-filter.ts';

describe('createCredentialVerifier', () => {
  const hash = hashSecret('right', DEVICE_COST);

  it('runs scrypt once per username+password and serves repeats from the cache', async () => {
    let scrypts = 0;
    const v = createCredentialVerifier(10, (s, h) => {
      scrypts++;
      return verifySecret(s, h);
    });
    expect(await Promise.all([v.verify('d1', 'right', hash), v.verify('d1', 'right', hash)])).toEqual([true, true]);
    expect(await v.verify('d1', 'right', hash)).toBe(true);
    expect(scrypts).toBe(1);
    expect(v.hits).toBe(1);
  });

  it('never caches a failure and never accepts a wrong password from the cache', async () => {
    let scrypts = 0;
    const v = createCredentialVerifier(10, (s, h) => {
      scrypts++;
      return verifySecret(s, h);
    });
    expect(await v.verify('d1', 'right', hash)).toBe(true);
    expect(await v.verify('d1', 'wrong', hash)).toBe(false);
    expect(await v.verify('d1', 'wrong', hash)).toBe(false);
    expect(await v.verify('d2', 'right', hash)).toBe(true); // another username: verified on its own
    expect(scrypts).toBe(4);
    // A changed stored hash invalidates the cached success.
    expect(await v.verify('d1', 'right', hashSecret('other', DEVICE_COST))).toBe(false);
  });

  it('is bounded', async () => {
    const v = createCredentialVerifier(3, async () => true);
    for (let i = 0; i < 10; i++) await v.verify(`d${i}`, 'p', 'h');
    expect(v.size).toBe(3);
  });
});

describe('topic filters', () => {
  it('matches per [MQTT-4.7.1]', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+/c', 'a/b/d')).toBe(false);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
  });

  it('decides filter containment', () => {
    expect(filterWithin('a/x/c', 'a/+/c')).toBe(true);
    expect(filterWithin('a/+/c', 'a/+/c')).toBe(true);
    expect(filterWithin('a/#', 'a/+/c')).toBe(false);
    expect(filterWithin('a/+/+', 'a/+/c')).toBe(false);
    expect(filterWithin('a/b/c/d', 'a/#')).toBe(true);
    expect(filterWithin('a/b', 'a/b/c')).toBe(false);
  });
});
