import { describe, expect, it } from 'vitest';
import { DEVICE_COST, hashSecret, isDemoSecret, verifySecret } from '../../common/secrets.ts';

describe('secrets', () => {
  it('stores only a salted scrypt hash and verifies the right secret only', async () => {
    const stored = hashSecret('s3cret-value', DEVICE_COST);
    expect(stored).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(stored).not.toContain('s3cret-value');
    expect(hashSecret('s3cret-value', DEVICE_COST)).not.toBe(stored); // a fresh salt each time
    expect(await verifySecret('s3cret-value', stored)).toBe(true);
    expect(await verifySecret('s3cret-valuf', stored)).toBe(false);
  });

  it('refuses malformed stored hashes instead of throwing', async () => {
    for (const bad of ['', 'plain', 'scrypt$x$8$1$AA==$AA==', 'bcrypt$1$2$3$4$5']) expect(await verifySecret('x', bad)).toBe(false);
  });

  it('recognises demo secrets', () => {
    expect(isDemoSecret('demo-h01-sd-r101')).toBe(true);
    expect(isDemoSecret('Zk3q9…')).toBe(false);
  });
});
