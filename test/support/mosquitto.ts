import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../common/influxd.ts';
import { ROOT } from './process.ts';

/** Debian's Mosquitto 2.0 (package `mosquitto`, scripts/install-system-deps.sh). */
export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export interface MosquittoServer {
  /** The device listener (client id = username). */
  readonly devicesUrl: string;
  /** The service accounts' listener. */
  readonly servicesUrl: string;
  readonly dir: string;
  output(): string;
  /** Resolves once Mosquitto's log matches, e.g. a client's disconnect. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A private Mosquitto on free loopback ports, configured by scripts/mosquitto-config.ts (run as a
 * process, as an operator would) from `registryPath` with the demo secrets, in a temporary directory.
 */
export async function startMosquitto(registryPath: string): Promise<MosquittoServer> {
  const dir = await mkdtemp(join(tmpdir(), 'carewatch-mosquitto-'));
  const [devicesPort, servicesPort] = [await freePort(), await freePort()];
  const gen = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'scripts/mosquitto-config.ts'), '--registry', registryPath, '--out', dir, '--demo-secrets', '--devices', `127.0.0.1:${devicesPort}`, '--services', `127.0.0.1:${servicesPort}`, '--user', userInfo().username],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (gen.status !== 0) throw new Error(`mosquitto-config failed (${gen.status}): ${gen.stderr}`);
  const child = spawn(MOSQUITTO_BIN, ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buffer = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    buffer += d.toString();
    if (buffer.length > 1_000_000) buffer = buffer.slice(-500_000);
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitForOutput = (pattern: RegExp, timeoutMs = 15_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`mosquitto did not log ${pattern} within ${timeoutMs} ms:\n${buffer.slice(-3000)}`));
      }, timeoutMs);
      const check = (): void => {
        if (pattern.test(buffer)) {
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        } else if (child.exitCode !== null) {
          clearTimeout(timer);
          waiters.delete(check);
          reject(new Error(`mosquitto exited (${child.exitCode}) before logging ${pattern}:\n${buffer.slice(-3000)}`));
        }
      };
      waiters.add(check);
      check();
    });
  try {
    await waitForOutput(/mosquitto version [\d.]+ running/);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    devicesUrl: `mqtt://127.0.0.1:${devicesPort}`,
    servicesUrl: `mqtt://127.0.0.1:${servicesPort}`,
    dir,
    output: () => buffer,
    waitForOutput,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
