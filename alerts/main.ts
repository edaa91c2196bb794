/**
 * libuv's thread pool (default 4 threads) runs scrypt (logins) and the journal's fsync. Its size is
 * read once, when the pool first starts, so it belongs in the launcher's environment
 * (UV_THREADPOOL_SIZE=16 in the service unit / compose file; docs/alerts.md "Thread pool"). Setting
 * it here, before any of this module's own I/O, is a best effort only: the module loader may already
 * have started the pool. The login limiter (auth-routes.ts) is what actually protects the journal.
 */
const THREADPOOL_FROM_LAUNCHER = process.env.UV_THREADPOOL_SIZE;
/** glibc reads it at process start: only the launcher can set it (docs/alerts.md "Memory"). */
const MALLOC_FROM_LAUNCHER = process.env.MALLOC_MMAP_THRESHOLD_;
process.env.UV_THREADPOOL_SIZE ??= '16';

import { readFileSync } from 'node:fs';
import { StartupProblem, runProcess } from '../common/process-main.ts';
import { hasDemoRedisPassword, isDemoSecret } from '../common/secrets.ts';
import { envName } from '../common/config.ts';
import { readClientTls, readServerTls, type ServerTls } from '../common/tls.ts';
import { parseHomes } from '../common/homes.ts';
import { createAlerts } from './alerts.ts';
import { AlertsConfigSchema, escalationPolicy, notifyProductionProblems, parseNightHours, type AlertsConfig } from './config.ts';
import { notifyConfigProblems, type NotifyConfig } from './notify/config.ts';
import { careRules } from './rules/care/index.ts';
import { fireRules } from './rules/fire/index.ts';

/** Production mode refuses what only a demo may use: no token secret, or demo secrets. */
function productionProblems(config: Readonly<AlertsConfig>): string[] {
  const problems: string[] = [];
  if (config.tokenSecret === undefined) problems.push('CAREWATCH_TOKEN_SECRET is missing: required in production mode (at least 32 characters)');
  else if (isDemoSecret(config.tokenSecret)) problems.push('CAREWATCH_TOKEN_SECRET is a demo secret (starts with "demo-"): refused in production mode');
  // The default is the demo broker password: production must set its own.
  if (isDemoSecret(config.alertsPassword)) problems.push('CAREWATCH_ALERTS_PASSWORD is a demo secret (starts with "demo-"): refused in production mode');
  if (hasDemoRedisPassword(config.redisUrl)) problems.push('CAREWATCH_REDIS_URL has a demo password (starts with "demo-", e.g. docker-compose\'s default CAREWATCH_REDIS_PASSWORD): refused in production mode');
  return problems;
}

/** The HTTPS certificate and key, and the broker's CA, read once here from the files the variables name. */
function readTls(config: Readonly<AlertsConfig>): { https: ServerTls | undefined; mqttCa: Buffer | undefined } {
  try {
    return {
      https: readServerTls({ certFile: config.alertsTlsCertFile, keyFile: config.alertsTlsKeyFile }, { cert: envName('alertsTlsCertFile'), key: envName('alertsTlsKeyFile') }),
      mqttCa: readClientTls(config.mqttCaFile, envName('mqttCaFile')).ca,
    };
  } catch (err) {
    throw new StartupProblem((err as Error).message);
  }
}

/** Issue 15: the notification routing file, read and validated once at start (a bad file stops the process, naming the key). */
function loadNotifyConfig(path: string | undefined): NotifyConfig | undefined {
  if (path === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new StartupProblem(`CAREWATCH_NOTIFY_CONFIG ${path}: ${(err as Error).message}`);
  }
  const problems = notifyConfigProblems(parsed);
  if (problems.length > 0) throw new StartupProblem(`invalid notify configuration (${path}):\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return parsed as NotifyConfig;
}

/** Composition root of the alerts process: `node dist/alerts/main.js` (production build) or `node --import tsx alerts/main.ts`. */
const code = await runProcess({
  name: 'alerts',
  schema: AlertsConfigSchema,
  env: process.env,
  registryPath: (config) => config.registry,
  logLevel: (config) => config.logLevel,
  build: ({ config, registry, logger, production }) => {
    const problems = production ? productionProblems(config) : [];
    // Issue 15: read before the checks, so that production also judges the channels it names.
    const notify = loadNotifyConfig(config.notifyConfig);
    if (production) problems.push(...notifyProductionProblems(notify, { allowLoopbackHttp: config.notifyAllowLoopbackHttp === true }));
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
    if (MALLOC_FROM_LAUNCHER === undefined && process.platform === 'linux') {
      logger.warn({ code: 'ALERTS_MALLOC_UNSET' }, 'MALLOC_MMAP_THRESHOLD_ not set by the launcher: each libuv thread may keep a 16 MiB scrypt block (docs/alerts.md "Memory")');
    }
    const tls = readTls(config);
    const utcOffsetMin = config.siteUtcOffsetMin;
    const rules = [
      ...fireRules(),
      ...careRules({
        bed: { ...parseNightHours(config.careNightHours), utcOffsetMin, returnWithinMs: config.bedReturnWithinMin * 60_000 },
        reposition: { utcOffsetMin },
      }),
    ];
    return createAlerts({ config, registry, logger, rules, production, policy: escalationPolicy(config), https: tls.https, mqttCa: tls.mqttCa, ...(notify !== undefined ? { notify } : {}) });
  },
  started: (alerts, config) => `alerts listening ${config.alertsTlsCertFile !== undefined ? 'https' : 'http'}://${config.httpHost}:${alerts.port}`,
});
process.exit(code);
