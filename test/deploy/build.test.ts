import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { builtScript } from '../support/build.ts';
import { startProcess } from '../support/process.ts';

/**
 * The production build (tsconfig.build.json, `npm run build`): the Docker image and both compose
 * files run the compiled processes with plain `node`, and every process a test starts (the e2e,
 * fault, cluster and security suites) runs from this run's build, so those suites test what is
 * deployed, not only the sources.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The run's build (test/support/global-setup.ts); watch mode makes none and runs processes from source. */
function buildDir(): string {
  const dir = inject('buildDir');
  if (dir === undefined) throw new Error('no production build in this run: vitest in watch mode runs the processes from source (use `vitest run`)');
  return dir;
}

describe('the production build', () => {
  it('is what the processes started by tests run, and a compiled process starts', async () => {
    const build = buildDir();
    const store = await mkdtemp(join(tmpdir(), 'carewatch-build-'));
    const p = startProcess('build-broker', 'broker/main.ts', { CAREWATCH_BROKER_PORT: '0', CAREWATCH_BROKER_WS_PORT: '0', CAREWATCH_BROKER_STORE_DIR: store });
    try {
      expect(p.script).toBe(builtScript(build, 'broker/main.ts'));
      expect(p.child.spawnargs).not.toContain('tsx');
      await p.waitForOutput(/broker listening mqtt:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await p.stop();
      await rm(store, { recursive: true, force: true });
    }
  });

  it('is what the Dockerfile builds and runs, without TypeScript or tsx in the runtime image', async () => {
    const text = await readFile(`${ROOT}Dockerfile`, 'utf8');
    const [build = '', runtime = ''] = text.split(/^FROM /m).slice(1);
    // Compiled before the dependencies are pruned to production ones (tsc is a devDependency).
    expect(build.indexOf('RUN npm run build')).toBeGreaterThan(-1);
    expect(build.indexOf('RUN npm run build')).toBeLessThan(build.indexOf('npm ci --omit=dev'));
    expect(build).toMatch(/^COPY tsconfig\.json tsconfig\.build\.json /m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime).not.toMatch(/tsx|\.ts\b/);
    const cmd = /^CMD (\[.*\])$/m.exec(runtime)?.[1];
    expect(JSON.parse(cmd ?? '[]')).toEqual(['node', 'dist/alerts/main.js']);
    const pkg = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string>; dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
    expect(Object.keys(pkg.dependencies)).not.toContain('tsx');
    expect(Object.keys(pkg.devDependencies)).toContain('tsx');
  });

  it("is what every node command of both compose files runs, each a file the build emits", async () => {
    const build = buildDir();
    for (const file of ['docker-compose.yml', 'docker-compose.cluster.yml']) {
      const text = await readFile(`${ROOT}${file}`, 'utf8');
      expect(text, file).not.toMatch(/tsx/);
      const scripts = [...text.matchAll(/command: \[ "node", "([^"]+)"/g)].map((m) => m[1] ?? '');
      expect(scripts.length, file).toBeGreaterThanOrEqual(3);
      for (const script of scripts) {
        expect(script, `${file}: ${script}`).toMatch(/^dist\/[a-z-]+\/[a-z-]+\.js$/);
        const entry = script.replace(/^dist\//, '').replace(/\.js$/, '.ts');
        expect(existsSync(`${ROOT}${entry}`), `${file}: the source ${entry}`).toBe(true);
        expect(existsSync(builtScript(build, entry)), `${file}: ${script} in the build`).toBe(true);
      }
    }
  });
});
