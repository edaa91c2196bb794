import { runProcess, StartupProblem } from '../common/process-main.ts';
import { createBroker } from './broker.ts';
import { BrokerEnv } from './config.ts';

/** Composition root of the broker process: `node --import tsx broker/main.ts`. */
const code = await runProcess({
  name: 'broker',
  schema: BrokerEnv,
  env: process.env,
  registryPath: (env) => env.registry,
  logLevel: (env) => env.logLevel,
  build: ({ config: env, registry, logger, production }) => {
    if (env.brokerCluster === 'redis' && env.brokerRedisUrl === undefined) throw new StartupProblem('CAREWATCH_BROKER_CLUSTER=redis needs CAREWATCH_BROKER_REDIS_URL (the nodes share sessions and messages through it)');
    return createBroker({
      config: {
        host: env.brokerHost,
        port: env.brokerPort,
        wsPort: env.brokerWsPort,
        redisUrl: env.brokerRedisUrl,
        storeDir: env.brokerStoreDir,
        httpPort: env.brokerHttpPort,
        production,
        ...(env.brokerCluster === 'redis' ? { cluster: { nodeId: env.brokerNodeId ?? 'broker' } } : {}),
        ...(env.brokerHeartbeatMs !== undefined ? { limits: { heartbeatIntervalMs: env.brokerHeartbeatMs } } : {}),
      },
      registry,
      logger,
    });
  },
  started: (broker, env) => `broker listening mqtt://${env.brokerHost}:${broker.tcpPort} ws://${env.brokerHost}:${broker.wsPort}/mqtt${broker.httpPort !== undefined ? ` metrics http://${env.brokerHost}:${broker.httpPort}/metrics` : ''}${broker.nodeId !== undefined ? ` node ${broker.nodeId}` : ''}`,
});
process.exit(code);
