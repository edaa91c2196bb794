/**
 * libuv's thread pool (default 4 threads) runs scrypt (logins) and the journal's fsync. Its size is
 * read once, when the pool first starts, so it belongs in the launcher's environment
 * (UV_THREADPOOL_SIZE=16 in the service unit / compose file; docs/alerts.md "Thread pool"). Setting
 * it here, before any of this module's own I/O, is a best effort only: the module loader may already
 * have started the pool. The login limiter (auth-routes.ts) is what actually protects the journal.
 */
const THREADPOOL_FROM_LAUNCHER = process.env.UV_THREADPOOL_SIZE;
process.env.UV_THREADPOOL_SIZE ??= '16';

import { ConfigError, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { loadRegistry } from '../common/registry-file.ts';
import { isDemoSecret } from '../common/secrets.ts';
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
  if (production) {
    const problems: string[] = [];
    if (config.tokenSecret === undefined) problems.push('CAREWATCH_TOKEN_SECRET is missing: required in production mode (at least 32 characters)');
    else if (isDemoSecret(config.tokenSecret)) problems.push('CAREWATCH_TOKEN_SECRET is a demo secret (starts with "demo-"): refused in production mode');
    // The default is the demo broker password: production must set its own.
    if (isDemoSecret(config.alertsPassword)) problems.push('CAREWATCH_ALERTS_PASSWORD is a demo secret (starts with "demo-"): refused in production mode');
    if (problems.length > 0) {
      process.stderr.write(`alerts: invalid configuration:\n${problems.map((p) => `  ${p}\n`).join('')}`);
      process.exit(1);
    }
  }
  const logger = createLogger('alerts', config.logLevel as 'info');
  if (THREADPOOL_FROM_LAUNCHER === undefined) {
    logger.warn({ code: 'ALERTS_THREADPOOL_UNSET', uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE }, 'UV_THREADPOOL_SIZE not set by the launcher; set it in the service environment');
  }
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
