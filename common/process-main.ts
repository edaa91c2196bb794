import type { Static, TObject } from '@sinclair/typebox';
import type { LevelWithSilent } from 'pino';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { RegistryError, loadRegistry } from './registry-file.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';

/**
 * The shape every process's main.ts shares: read the configuration once, load the registry,
 * build the logger, build and start the component, close it on SIGTERM/SIGINT. It returns the exit
 * code instead of exiting, so main.ts stays the only place that calls process.exit.
 */
export interface Runnable {
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A configuration problem found after the schema check (e.g. a name not in the registry). */
export class StartupProblem extends Error {}

export interface ProcessSpec<T extends TObject, C extends Runnable> {
  readonly name: string;
  readonly schema: T;
  /** process.env, passed in by main.ts. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly registryPath: (config: Readonly<Static<T>>) => string;
  readonly logLevel: (config: Readonly<Static<T>>) => string;
  readonly build: (ctx: { config: Readonly<Static<T>>; registry: RegistryIndex; logger: Logger; production: boolean }) => C;
  /** A line for stdout once started (tests and the demo wait for it). */
  readonly started?: (component: C, config: Readonly<Static<T>>) => string;
}

export async function runProcess<T extends TObject, C extends Runnable>(spec: ProcessSpec<T, C>): Promise<number> {
  const fail = (message: string): number => {
    process.stderr.write(`${spec.name}: ${message}\n`);
    return 1;
  };
  let config: Readonly<Static<T>>;
  try {
    config = loadConfig(spec.schema, spec.env);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  let registry: RegistryIndex;
  try {
    registry = await loadRegistry(spec.registryPath(config));
  } catch (err) {
    if (err instanceof RegistryError) return fail(`${err.message} (CAREWATCH_REGISTRY)`);
    throw err;
  }
  const logger = createLogger(spec.name, spec.logLevel(config) as LevelWithSilent);
  let component: C;
  try {
    component = spec.build({ config, registry, logger, production: spec.env.NODE_ENV === 'production' });
  } catch (err) {
    if (err instanceof StartupProblem) return fail(err.message);
    throw err;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string, code: number): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      component.close().then(
        () => resolve(code),
        (err: unknown) => {
          logger.error({ err, code: 'PROCESS_CLOSE_FAILED' }, 'close failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM', 0));
    process.once('SIGINT', () => stop('SIGINT', 0));
    component.start().then(
      () => {
        if (!stopping && spec.started) process.stdout.write(`${spec.started(component, config)}\n`);
      },
      (err: unknown) => {
        logger.fatal({ err, code: 'PROCESS_START_FAILED' }, `${spec.name} failed to start`);
        stop('start-failed', 1);
      },
    );
  });
}
