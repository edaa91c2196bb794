import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderProvisioning } from './render.ts';

/**
 * `npm run grafana`: writes the Grafana provisioning rendered from code into dashboards/grafana/,
 * and removes dashboard files the code no longer renders. `--check` writes nothing and exits 1 when
 * a committed file differs from what the code renders.
 */
const ROOT = fileURLToPath(new URL('../', import.meta.url));

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const files = renderProvisioning();
  const stale: string[] = [];
  for (const [rel, content] of files) {
    const path = join(ROOT, rel);
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === content) continue;
    stale.push(rel);
    if (!check) {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
    }
  }
  for (const name of await readdir(join(ROOT, 'dashboards')).catch(() => [])) {
    if (!name.endsWith('.json') || files.has(`dashboards/${name}`)) continue;
    stale.push(`dashboards/${name} (no longer generated)`);
    if (!check) await rm(join(ROOT, 'dashboards', name));
  }
  if (check && stale.length > 0) {
    console.error(`Grafana provisioning is out of date (run npm run grafana): ${stale.join(', ')}`);
    process.exit(1);
  }
  console.log(stale.length === 0 ? 'Grafana provisioning up to date' : `wrote ${stale.join(', ')}`);
}

await main();
