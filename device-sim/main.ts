import type { Static } from '@sinclair/typebox';
import { ConfigError, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { RegistryError, loadRegistry } from '../common/registry-file.ts';
import { SimEnv } from './config.ts';
import { createSimulator } from './simulator.ts';

/** Composition root of the device simulator: `node --import tsx device-sim/main.ts`. */
function fail(message: string): never {
  process.stderr.write(`device-sim: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let env: Readonly<Static<typeof SimEnv>>;
  try {
    env = loadConfig(SimEnv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const logger = createLogger('device-sim', env.logLevel as Parameters<typeof createLogger>[1]);
  let registry;
  try {
    registry = await loadRegistry(env.registry);
  } catch (err) {
    if (err instanceof RegistryError) fail(`${err.message} (CAREWATCH_REGISTRY)`);
    throw err;
  }
  const homes = env.simHomes?.split(',');
  const unknown = homes?.filter((h) => registry.home(h) === undefined) ?? [];
  if (unknown.length > 0) fail(`CAREWATCH_SIM_HOMES names homes not in the registry: ${unknown.join(', ')}`);
  const sim = createSimulator({
    config: {
      mqttUrl: env.mqttUrl,
      ...(homes !== undefined ? { homes } : {}),
      speed: env.simSpeed,
      seed: env.simSeed,
      controlPort: env.simControlPort,
      spontaneous: env.simSpontaneous,
    },
    registry,
    logger,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    sim.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  try {
    await sim.start();
  } catch (err) {
    logger.fatal({ err }, 'simulator failed to start');
    await sim.close().catch(() => undefined);
    process.exit(1);
  }
  if (!stopping) process.stdout.write(`device-sim: ${sim.devices().length} devices connected to ${env.mqttUrl}; control API ${sim.controlUrl() ?? '(none)'}\n`);
}

void main();
