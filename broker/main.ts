import { LISTEN_BACKLOG, earlyAddress, listenEarly, type EarlyListener } from './early-listener.ts';

/**
 * Composition root of the broker process: `node --import tsx broker/main.ts`.
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
const { runProcess } = await import('../common/process-main.ts');
const { createBroker } = await import('./broker.ts');
const { BrokerEnv } = await import('./config.ts');
const code = await runProcess({
  name: 'broker',
  schema: BrokerEnv,
  env: process.env,
  registryPath: (env) => env.registry,
  logLevel: (env) => env.logLevel,
  build: ({ config: env, registry, logger, production }) => {
    // Only a listener on exactly the configured address is used (the schema is the authority).
    const usable = listener !== undefined && early !== undefined && early.port === env.brokerPort && early.host === env.brokerHost;
    if (!usable) listener?.server.close();
    return createBroker({
      config: { host: env.brokerHost, port: env.brokerPort, wsPort: env.brokerWsPort, redisUrl: env.brokerRedisUrl, storeDir: env.brokerStoreDir, httpPort: env.brokerHttpPort, production },
      registry,
      logger,
      ...(usable && listener !== undefined ? { listener } : {}),
    });
  },
  started: (broker, env) => `broker listening mqtt://${env.brokerHost}:${broker.tcpPort} ws://${env.brokerHost}:${broker.wsPort}/mqtt${broker.httpPort !== undefined ? ` metrics http://${env.brokerHost}:${broker.httpPort}/metrics` : ''}`,
});
// A start-up that failed after the early listen (bad registry …) must not leave the port open.
listener?.server.close();
process.exit(code);
