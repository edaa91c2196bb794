import { ConfigError, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { loadRegistry } from '../common/registry-file.ts';
import { createAlerts } from './alerts.ts';
import { AlertsConfigSchema, parseNightHours } from './config.ts';
import { careRules } from './rules/care/index.ts';
import { fireRules } from './rules/fire/index.ts';

/** Composition root of the alerts process: the only place that reads the environment and exits. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(AlertsConfigSchema, process.env);
  } catch (err) {
    process.stderr.write(`alerts: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const production = process.env.NODE_ENV === 'production';
  if (production && config.tokenSecret === undefined) {
    process.stderr.write('alerts: invalid configuration:\n  CAREWATCH_TOKEN_SECRET is missing: required in production mode (at least 32 characters)\n');
    process.exit(1);
  }
  const logger = createLogger('alerts', config.logLevel as 'info');
  let alerts;
  try {
    const registry = await loadRegistry(config.registry);
    const utcOffsetMin = config.siteUtcOffsetMin;
    const rules = [
      ...fireRules(),
      ...careRules({
        bed: { ...parseNightHours(config.careNightHours), utcOffsetMin, returnWithinMs: config.bedReturnWithinMin * 60_000 },
        reposition: { utcOffsetMin },
      }),
    ];
    alerts = createAlerts({ config, registry, logger, rules, production });
    await alerts.start();
  } catch (err) {
    logger.fatal({ err }, 'alerts failed to start');
    await alerts?.close().catch(() => undefined);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'closing');
    alerts
      .close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, 'close failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
