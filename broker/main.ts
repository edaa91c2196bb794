import { runProcess } from '../common/process-main.ts';
import { createBroker } from './broker.ts';
import { BrokerEnv } from './config.ts';

/** Composition root of the broker process: `node --import tsx broker/main.ts`. */
const code = await runProcess({
  name: 'broker',
  schema: BrokerEnv,
  env: process.env,
  registryPath: (env) => env.registry,
  logLevel: (env) => env.logLevel,
  build: ({ config: env, registry, logger, production }) =>
    createBroker({
      config: { host: env.brokerHost, port: env.brokerPort, wsPort: env.brokerWsPort, redisUrl: env.brokerRedisUrl, storeDir: env.brokerStoreDir, httpPort: env.brokerHttpPort, production },
      registry,
      logger,
    }),
  started: (broker, env) => `broker listening mqtt://${env.brokerHost}:${broker.tcpPort} ws://${env.brokerHost}:${broker.wsPort}/mqtt${broker.httpPort !== undefined ? ` metrics http://${env.brokerHost}:${broker.httpPort}/metrics` : ''}`,
});
process.exit(code);
