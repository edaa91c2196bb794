import { LISTEN_BACKLOG, earlyAddress, listenEarly, type EarlyListener } from './early-listener.ts';

/**
 * Composition root of the broker process: `node dist/broker/main.js` (production build) or `node --import tsx broker/main.ts`.
 *
 * The MQTT/TCP port is opened first, before the broker's modules load (early-listener.ts): after a
 * crash and restart, devices reconnecting during the seconds of module loading wait in the accept
 * queue instead of being refused into their exponential back-off (issue 12, bench `reconnect`).
 * Nothing is read from a connection until the broker has started. This file imports nothing else
 * before the listen (the config schema's TypeBox alone took 1.3 s of a loaded start-up).
 */
let listener: EarlyListener | undefined;
const early = earlyAddress(process.env);
if (early !== undefined) {
  // A port in use is reported by broker.start(), which tries again.
  listener = await listenEarly(early.port, early.host, LISTEN_BACKLOG).catch(() => undefined);
}
const { StartupProblem, runProcess } = await import('../common/process-main.ts');
const { envName } = await import('../common/config.ts');
const { readServerTls } = await import('../common/tls.ts');
const { hasDemoRedisPassword } = await import('../common/secrets.ts');
const { createBroker } = await import('./broker.ts');
const { BrokerEnv, sessionQueueBoundFor } = await import('./config.ts');
const { getHeapStatistics } = await import('node:v8');

/** The certificate and key the TLS ports serve, read once here (modules read no files of config). */
function serverTls(env: { brokerTlsCertFile?: string | undefined; brokerTlsKeyFile?: string | undefined }): ReturnType<typeof readServerTls> {
  try {
    return readServerTls({ certFile: env.brokerTlsCertFile, keyFile: env.brokerTlsKeyFile }, { cert: envName('brokerTlsCertFile'), key: envName('brokerTlsKeyFile') });
  } catch (err) {
    throw new StartupProblem((err as Error).message);
  }
}

const code = await runProcess({
  name: 'broker',
  schema: BrokerEnv,
  env: process.env,
  registryPath: (env) => env.registry,
  logLevel: (env) => env.logLevel,
  build: ({ config: env, registry, logger, production }) => {
    // Only a listener on exactly the configured plain address is used (the schema is the authority).
    const usable = listener !== undefined && early !== undefined && env.brokerPlain && early.port === env.brokerPort && early.host === env.brokerHost;
    if (!usable) listener?.server.close();
    const tls = serverTls(env);
    if (!env.brokerPlain && tls === undefined) {
      throw new StartupProblem(`${envName('brokerPlain')}=false leaves no listener: set ${envName('brokerTlsCertFile')} and ${envName('brokerTlsKeyFile')}`);
    }
    if (production && hasDemoRedisPassword(env.brokerRedisUrl)) {
      throw new StartupProblem(`${envName('brokerRedisUrl')} has a demo password (starts with "demo-", e.g. docker-compose's default CAREWATCH_REDIS_PASSWORD): refused in production mode`);
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
        metricsToken: env.metricsToken,
        production,
        ...(env.brokerCluster === 'redis' ? { cluster: { nodeId: env.brokerNodeId ?? 'broker' } } : {}),
        limits: {
          ...(env.brokerHeartbeatMs !== undefined ? { heartbeatIntervalMs: env.brokerHeartbeatMs } : {}),
          sessionQueueMaxBytes: env.brokerSessionQueueMaxBytes ?? sessionQueueBoundFor(getHeapStatistics().heap_size_limit),
        },
      },
      registry,
      logger,
      ...(usable && listener !== undefined ? { listener } : {}),
    });
  },
  started: (broker, env) =>
    [
      'broker listening',
      env.brokerPlain ? `mqtt://${env.brokerHost}:${broker.tcpPort} ws://${env.brokerHost}:${broker.wsPort}/mqtt` : '',
      broker.tlsPort !== undefined ? `mqtts://${env.brokerHost}:${broker.tlsPort} wss://${env.brokerHost}:${broker.wssPort}/mqtt` : '',
      broker.httpPort !== undefined ? `metrics http://${env.brokerHost}:${broker.httpPort}/metrics` : '',
      broker.nodeId !== undefined ? `node ${broker.nodeId}` : '',
    ]
      .filter((part) => part !== '')
      .join(' '),
});
// A start-up that failed after the early listen (bad registry …) must not leave the port open.
listener?.server.close();
process.exit(code);
