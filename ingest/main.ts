import { Type } from '@sinclair/typebox';
import type { LevelWithSilent } from 'pino';
import { ConfigError, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { loadRegistry } from '../common/registry-file.ts';
import { createIngest } from './ingest.ts';

/** Composition root of the ingest process: `node --import tsx ingest/main.ts`. */

const ConfigSchema = Type.Object({
  registry: Type.String({ default: 'config/demo-site.json', minLength: 1, description: 'path to the site registry JSON' }),
  mqttUrl: Type.String({ default: 'mqtt://127.0.0.1:1883', pattern: '^(mqtt|tcp)://[^/]+$', description: 'MQTT broker URL like mqtt://127.0.0.1:1883' }),
  ingestUsername: Type.String({ default: 'svc-ingest', minLength: 1 }),
  ingestPassword: Type.String({ minLength: 1, description: 'the svc-ingest account secret (demo: demo-svc-ingest)' }),
  // [MQTT-3.1.3-5] allows 1..23 characters as a minimum every broker accepts.
  ingestClientId: Type.String({ default: 'svc-ingest', pattern: '^[A-Za-z0-9_-]{1,23}$', description: 'MQTT client id, 1-23 of [A-Za-z0-9_-]' }),
  influxUrl: Type.String({ default: 'http://127.0.0.1:8086', pattern: '^https?://', description: 'InfluxDB 1.x URL like http://127.0.0.1:8086' }),
  influxDb: Type.String({ default: 'carewatch', pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  spoolDir: Type.String({ default: '.tmp/spool/ingest', minLength: 1 }),
  spoolMaxBytes: Type.Integer({ default: 512 * 1024 * 1024, minimum: 1024 * 1024 }),
  ingestHttpPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
});

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig(ConfigSchema, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ingest: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger('ingest', cfg.logLevel as LevelWithSilent);
  let registry;
  try {
    registry = await loadRegistry(cfg.registry);
  } catch (err) {
    process.stderr.write(`ingest: CAREWATCH_REGISTRY: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const ingest = createIngest({
    registry,
    logger,
    config: {
      mqttUrl: cfg.mqttUrl,
      username: cfg.ingestUsername,
      password: cfg.ingestPassword,
      clientId: cfg.ingestClientId,
      influxUrl: cfg.influxUrl,
      influxDb: cfg.influxDb,
      spoolDir: cfg.spoolDir,
      spoolMaxBytes: cfg.spoolMaxBytes,
      httpPort: cfg.ingestHttpPort,
    },
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    ingest.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await ingest.start();
  logger.info({ mqttUrl: cfg.mqttUrl, influxUrl: cfg.influxUrl, db: cfg.influxDb, spoolDir: cfg.spoolDir, httpPort: ingest.httpPort() }, 'ingest started');
}

main().catch((err: unknown) => {
  process.stderr.write(`ingest: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
