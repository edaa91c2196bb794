import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

// Issue 12: "list each runtime dependency in the README with why it is there". Three went unlisted
// for several sessions (mqemitter-redis, ioredis, @socket.io/redis-adapter); this keeps the table whole.
it('the README names every runtime dependency of package.json in its Dependencies table, with a reason', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Dependencies'));
  const rows = new Map(
    [...section.matchAll(/^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|$/gm)].map((m) => [m[1] ?? '', { usedBy: (m[2] ?? '').trim(), why: (m[3] ?? '').trim() }]),
  );
  const deps = Object.keys(pkg.dependencies).sort();
  expect(deps.filter((d) => !rows.has(d))).toEqual([]);
  for (const d of deps) expect(rows.get(d)?.why.length, `${d}: why`).toBeGreaterThan(10);
});
