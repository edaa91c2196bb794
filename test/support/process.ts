import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_ENV, builtScript } from './build.ts';

export const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

/**
 * A carewatch process started by a test, its output kept in .tmp/logs/: in a vitest run from the
 * run's production build (`node <build>/broker/main.js`, as the Docker image runs it), otherwise
 * from source (`node --import tsx broker/main.ts`).
 */
export interface TestProcess {
  readonly child: ChildProcess;
  /** The script node runs: the compiled entry or the TypeScript source. */
  readonly script: string;
  readonly logPath: string;
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
  stop(): Promise<number | null>;
}

/**
 * node's arguments for one of our processes (`alerts/main.ts`): in a vitest run its production build
 * (`<build>/alerts/main.js`, as the Docker image runs it), otherwise the source through tsx. Every
 * test that spawns a process itself uses this too.
 */
export function processArgv(entry: string): string[] {
  const build = process.env[BUILD_ENV];
  if (build !== undefined && build !== '') return [builtScript(build, entry)];
  return ['--import', 'tsx', join(ROOT, entry)];
}

export function startProcess(name: string, entry: string, env: Record<string, string>): TestProcess {
  mkdirSync(join(ROOT, '.tmp', 'logs'), { recursive: true });
  const argv = processArgv(entry);
  const script = argv[argv.length - 1] ?? entry;
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', CAREWATCH_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logPath = join(ROOT, '.tmp', 'logs', `${name}-${child.pid}.log`);
  const log = createWriteStream(logPath);
  let buffer = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    buffer += d.toString();
    if (buffer.length > 1_000_000) buffer = buffer.slice(-500_000);
    log.write(d);
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    log.end();
    resolve(code);
    for (const w of waiters) w();
  }));
  const proc: TestProcess = {
    child,
    script,
    logPath,
    output: () => buffer,
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = buffer.match(pattern);
          if (m) {
            cleanup();
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`${name} exited before printing ${pattern}; log ${logPath}:\n${buffer.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms; log ${logPath}:\n${buffer.slice(-3000)}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    stop() {
      return proc.kill('SIGTERM');
    },
  };
  return proc;
}

/** Polls `fn` until it returns a value that is not undefined; fails with `what` after the timeout. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
