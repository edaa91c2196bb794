/**
 * libuv's thread pool (default 4 threads) runs scrypt (logins) and the journal's fsync. Its size is
 * read once, when the pool first starts, so it belongs in the launcher's environment
 * (UV_THREADPOOL_SIZE=16 in the service unit / compose file; docs/alerts.md "Thread pool"). Setting
 * it here, before any of this module's own I/O, is a best effort only: the module loader may already
 * have started the pool. The login limiter (auth-routes.ts) is what actually protects the journal.
 */
const THREADPOOL_FROM_LAUNCHER = process.env.UV_THREADPOOL_SIZE;
process.env.UV_THREADPOOL_SIZE ??= '16';

import { StartupProblem, runProcess } from '../common/process-main.ts';
import { isDemoSecret } from '../common/secrets.ts';
import { parseHomes } from '../common/homes.ts';
import { createAlerts } from './alerts.ts';
import { AlertsConfigSchema, escalationPolicy, parseNightHours, type AlertsConfig } from './config.ts';
import { careRules } from './rules/care/index.ts';
import { fireRules } from './rules/fire/index.ts';

/** Production mode refuses what only a demo may use: no token secret, or demo secrets. */
function productionProblems(config: Readonly<AlertsConfig>): string[] {
  const problems: string[] = [];
  if (config.tokenSecret === undefined) problems.push('CAREWATCH_TOKEN_SECRET is missing: required in production mode (at least 32 characters)');
  else if (isDemoSecret(config.tokenSecret)) problems.push('CAREWATCH_TOKEN_SECRET is a demo secret (starts with "demo-"): refused in production mode');
  // The default is the demo broker password: production must set its own.
  if (isDemoSecret(config.alertsPassword)) problems.push('CAREWATCH_ALERTS_PASSWORD is a demo secret (starts with "demo-"): refused in production mode');
  return problems;
}

/** Composition root of the alerts process: `node --import tsx alerts/main.ts`. */
const code = await runProcess({
  name: 'alerts',
  schema: AlertsConfigSchema,
  env: process.env,
  registryPath: (config) => config.registry,
  logLevel: (config) => config.logLevel,
  build: ({ config, registry, logger, production }) => {
    const problems = production ? productionProblems(config) : [];
    // Issue 14: a wrong home list fails the start with a reason (createAlerts would throw it too).
    try {
      parseHomes(config.homes, registry);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (config.homes !== undefined && config.instance === undefined) problems.push('CAREWATCH_INSTANCE is required with CAREWATCH_HOMES: a name per alerts instance');
    if (problems.length > 0) throw new StartupProblem(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    if (THREADPOOL_FROM_LAUNCHER === undefined) {
      logger.warn({ code: 'ALERTS_THREADPOOL_UNSET', uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE }, 'UV_THREADPOOL_SIZE not set by the launcher; set it in the service environment');
    }
    const utcOffsetMin = config.siteUtcOffsetMin;
    const rules = [
      ...fireRules(),
      ...careRules({
        bed: { ...parseNightHours(config.careNightHours), utcOffsetMin, returnWithinMs: config.bedReturnWithinMin * 60_000 },
        reposition: { utcOffsetMin },
      }),
    ];
    return createAlerts({ config, registry, logger, rules, production, policy: escalationPolicy(config) });
  },
  started: (alerts, config) => `alerts listening http://${config.httpHost}:${alerts.port}`,
});
process.exit(code);
