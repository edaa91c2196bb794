import { execFile } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { processAlive } from '../common/process-alive.ts';

/**
 * The production build (tsconfig.build.json: what the Docker image runs) made for tests and
 * benchmarks, which start the processes as production does: `node <outDir>/broker/main.js`.
 */
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * Compiles into `outDir`, which must be inside the repository: the compiled files find
 * node_modules and package.json's `"type": "module"` by walking up from where they are.
 */
export async function buildProduction(outDir: string): Promise<void> {
  try {
    await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', outDir], { cwd: ROOT, timeout: 300_000 });
  } catch (err) {
    // tsc prints its errors on stdout, which execFile's error message leaves out.
    const out = (err as { stdout?: unknown }).stdout;
    throw new Error(`the production build (tsconfig.build.json) failed:\n${typeof out === 'string' ? out.slice(0, 10_000) : String(err)}`);
  }
}

/** The compiled script of a source entry: `broker/main.ts` → `<outDir>/broker/main.js`. */
export function builtScript(outDir: string, entry: string): string {
  return join(outDir, entry.replace(/\.ts$/, '.js'));
}

/**
 * A build directory for this process, `<parent>/<prefix>-<pid>`, removed when the process exits;
 * those of processes that are gone (killed before they could remove theirs) are removed first.
 */
export function buildDirFor(parent: string, prefix: string): string {
  const re = new RegExp(`^${prefix}-(\\d+)$`);
  let names: string[] = [];
  try {
    names = readdirSync(parent);
  } catch {
    // No parent yet: nothing stale.
  }
  for (const name of names) {
    const pid = Number(re.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
  const dir = join(parent, `${prefix}-${process.pid}`);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
