import { StartupProblem, runProcess } from '../common/process-main.ts';
import { envName } from '../common/config.ts';
import { readServerTls, type ServerTls } from '../common/tls.ts';
import { createBroker } from './broker.ts';
import { BrokerEnv } from './config.ts';

/** The certificate and key the TLS ports serve, read once here (modules read no files of config). */
function serverTls(env: { brokerTlsCertFile?: string | undefined; brokerTlsKeyFile?: string | undefined }): ServerTls | undefined {
  try {
    return readServerTls({ certFile: env.brokerTlsCertFile, keyFile: env.brokerTlsKeyFile }, { cert: envName('brokerTlsCertFile'), key: envName('brokerTlsKeyFile') });
  } catch (err) {
    throw new StartupProblem((err as Error).message);
  }
}

/** Composition root of the broker process: `node --import tsx broker/main.ts`. */
const code = await runProcess({
  name: 'broker',
  schema: BrokerEnv,
  env: process.env,
  registryPath: (env) => env.registry,
  logLevel: (env) => env.logLevel,
  build: ({ config: env, registry, logger, production }) => {
    const tls = serverTls(env);
    if (!env.brokerPlain && tls === undefined) {
      throw new StartupProblem(`${envName('brokerPlain')}=false leaves no listener: set ${envName('brokerTlsCertFile')} and ${envName('brokerTlsKeyFile')}`);
    }
    if (env.brokerCluster === 'redis' && env.brokerRedisUrl === undefined) throw new StartupProblem('CAREWATCH_BROKER_CLUSTER=redis needs CAREWATCH_BROKER_REDIS_URL (the nodes share sessions and messages through it)');
    return createBroker({
      config: {
        host: env.brokerHost,
        port: env.brokerPort,
        wsPort: env.brokerWsPort,
        plain: env.brokerPlain,
        tls: tls === undefined ? undefined : { ...tls, port: env.brokerTlsPort, wssPort: env.brokerWssPort },
        redisUrl: env.brokerRedisUrl,
        storeDir: env.brokerStoreDir,
        httpPort: env.brokerHttpPort,
        production,
      },
      registry,
      logger,
    });
  },
});
process.exit(code);
