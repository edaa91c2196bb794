import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', outDir], { cwd: ROOT, timeout: 300_000 });
}

/** The compiled script of a source entry: `broker/main.ts` → `<outDir>/broker/main.js`. */
export function builtScript(outDir: string, entry: string): string {
  return join(outDir, entry.replace(/\.ts$/, '.js'));
}
