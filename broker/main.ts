import { ConfigError, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { RegistryError, loadRegistry } from '../common/registry-file.ts';
import { createBroker } from './broker.ts';
import { BrokerEnv } from './config.ts';

/** Composition root of the broker process: `node --import tsx broker/main.ts`. */
async function main(): Promise<void> {
  let env;
  try {
    env = loadConfig(BrokerEnv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`broker: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger('broker', env.logLevel as Parameters<typeof createLogger>[1]);
  let registry;
  try {
    registry = await loadRegistry(env.registry);
  } catch (err) {
    if (err instanceof RegistryError) {
      process.stderr.write(`broker: ${err.message} (CAREWATCH_REGISTRY)\n`);
      process.exit(1);
    }
    throw err;
  }
  const production = process.env.NODE_ENV === 'production';
  const broker = createBroker({
    config: { host: env.brokerHost, port: env.brokerPort, wsPort: env.brokerWsPort, redisUrl: env.brokerRedisUrl, production },
    registry,
    logger,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    broker.close().then(
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
    await broker.start();
  } catch (err) {
    logger.fatal({ err }, 'broker failed to start');
    await broker.close().catch(() => undefined);
    process.exit(1);
  }
  process.stdout.write(`broker listening mqtt://${env.brokerHost}:${broker.tcpPort} ws://${env.brokerHost}:${broker.wsPort}/mqtt\n`);
}

void main();
