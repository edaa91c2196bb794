import { describe, expect, it } from 'vitest';
import { safePath } from '../../../alerts/http/static-files.ts';

describe('safePath', () => {
  it('maps paths inside the root and refuses traversal', () => {
    expect(safePath('/srv/www', '/')).toBe('/srv/www/index.html');
    expect(safePath('/srv/www', '/app.js?v=1')).toBe('/srv/www/app.js');
    expect(safePath('/srv/www', '/../etc/passwd')).toBeUndefined();
    expect(safePath('/srv/www', '/%2e%2e/etc/passwd')).toBeUndefined();
    expect(safePath('/srv/www', '/a/..%2f..%2fetc')).toBeUndefined();
    expect(safePath('/srv/www', '/..\\x')).toBeUndefined();
    expect(safePath('/srv/www', '/x%00.js')).toBeUndefined();
    expect(safePath('/srv/www', '/%E0%A4%A')).toBeUndefined();
  });
});
