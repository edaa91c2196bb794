import { DEFAULT_RETENTION } from '../common/influx-schema.ts';
import { Type } from '@sinclair/typebox';
import { StartupProblem, runProcess } from '../common/process-main.ts';
import { envName } from '../common/config.ts';
import { readClientTls } from '../common/tls.ts';
import { HOMES_PATTERN, parseHomes } from '../common/homes.ts';
import { createIngest } from './ingest.ts';

/** Composition root of the ingest process: `node dist/ingest/main.js` (production build) or `node --import tsx ingest/main.ts`. */

const ConfigSchema = Type.Object({
  registry: Type.String({ default: 'config/demo-site.json', minLength: 1, description: 'path to the site registry JSON' }),
  mqttUrl: Type.String({ default: 'mqtt://127.0.0.1:1883', pattern: '^(mqtt|tcp|mqtts|ssl)://[^/]+$', description: 'MQTT broker URL like mqtt://127.0.0.1:1883 or mqtts://broker.example:8883' }),
  mqttCaFile: Type.Optional(Type.String({ minLength: 1, description: "PEM CA certificate that signed the broker's TLS certificate (mqtts://); default: the system's roots" })),
  ingestUsername: Type.String({ default: 'svc-ingest', minLength: 1 }),
  ingestPassword: Type.String({ minLength: 1, description: 'the svc-ingest account secret (demo: demo-svc-ingest)' }),
  // [MQTT-3.1.3-5] allows 1..23 characters as a minimum every broker accepts.
  ingestClientId: Type.String({ default: 'svc-ingest', pattern: '^[A-Za-z0-9_-]{1,23}$', description: 'MQTT client id, 1-23 of [A-Za-z0-9_-]' }),
  // docs/broker.md "Mosquitto": `service` when the broker does not stamp the receive time (Mosquitto).
  receiveStamp: Type.Union([Type.Literal('broker'), Type.Literal('service')], { default: 'broker', description: 'who stamps the receive time: broker (carewatch broker) or service (Mosquitto)' }),
  ingestShareGroup: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$', description: 'shared-subscription group ($share/<group>/...), e.g. ingest; needs Mosquitto 2 and a distinct CAREWATCH_INGEST_CLIENT_ID per instance' })),
  // Issue 14 (docs/scaling.md "Services partitioned by home"): the homes this instance stores; unset: every home.
  homes: Type.Optional(Type.String({ pattern: HOMES_PATTERN, description: 'comma-separated home ids this instance owns; unset for all homes' })),
  influxUrl: Type.String({ default: 'http://127.0.0.1:8086', pattern: '^https?://', description: 'InfluxDB 1.x URL like http://127.0.0.1:8086' }),
  influxDb: Type.String({ default: 'carewatch', pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  spoolDir: Type.String({ default: '.tmp/spool/ingest', minLength: 1 }),
  spoolMaxBytes: Type.Integer({ default: 512 * 1024 * 1024, minimum: 1024 * 1024 }),
  spoolMaxUnwrittenBytes: Type.Integer({ default: 16 * 1024 * 1024, minimum: 64 * 1024, description: 'bytes received and not yet written to the spool (a full or stalled disk) past which ingest stops reading from the broker' }),
  ingestHttpPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'port of /health, /healthz and /metrics (unset: none)' })),
  ingestHttpHost: Type.String({ default: '127.0.0.1', minLength: 1, description: 'interface of that port, e.g. 127.0.0.1 or 0.0.0.0' }),
  metricsToken: Type.Optional(Type.String({ minLength: 16, description: 'bearer token a scraper sends for /metrics, /health and /stats; unset: production serves none of them, development serves them to anyone' })),
  // Retention (common/influx-schema.ts, docs/architecture.md): raw readings, their per-minute
  // aggregates, and the records (events, statuses, alerts, incidents, audit) that GB 50440 has a
  // monitoring centre keep; ingest applies these at every start.
  retentionRawDays: Type.Integer({ default: DEFAULT_RETENTION.rawDays, minimum: 1, maximum: 36_500 }),
  retentionRollupDays: Type.Integer({ default: DEFAULT_RETENTION.rollupDays, minimum: 731, maximum: 36_500, description: 'days, at least 731 (two years)' }),
  retentionRecordsDays: Type.Integer({ default: DEFAULT_RETENTION.recordsDays, minimum: 731, maximum: 36_500, description: 'days, at least 731 (two years)' }),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
});

const code = await runProcess({
  name: 'ingest',
  schema: ConfigSchema,
  env: process.env,
  registryPath: (cfg) => cfg.registry,
  logLevel: (cfg) => cfg.logLevel,
  build: ({ config: cfg, registry, logger, production }) => {
    let mqttCa: Buffer | undefined;
    let homes: readonly string[] | undefined;
    try {
      mqttCa = readClientTls(cfg.mqttCaFile, envName('mqttCaFile')).ca;
      homes = parseHomes(cfg.homes, registry);
    } catch (err) {
      throw new StartupProblem((err as Error).message);
    }
    return createIngest({
      registry,
      logger,
      config: {
        mqttUrl: cfg.mqttUrl,
        mqttCa,
        username: cfg.ingestUsername,
        password: cfg.ingestPassword,
        clientId: cfg.ingestClientId,
        receiveStamp: cfg.receiveStamp,
        ...(cfg.ingestShareGroup !== undefined ? { shareGroup: cfg.ingestShareGroup } : {}),
        ...(homes !== undefined ? { homes } : {}),
        influxUrl: cfg.influxUrl,
        influxDb: cfg.influxDb,
        spoolDir: cfg.spoolDir,
        spoolMaxBytes: cfg.spoolMaxBytes,
        spoolMaxUnwrittenBytes: cfg.spoolMaxUnwrittenBytes,
        httpPort: cfg.ingestHttpPort,
        httpHost: cfg.ingestHttpHost,
        metricsAccess: { token: cfg.metricsToken, production },
        retention: { rawDays: cfg.retentionRawDays, rollupDays: cfg.retentionRollupDays, recordsDays: cfg.retentionRecordsDays },
      },
    });
  },
  started: (ingest, cfg) => `ingest started: ${cfg.mqttUrl} → ${cfg.influxUrl}/${cfg.influxDb}, spool ${cfg.spoolDir}${ingest.httpPort() !== undefined ? `, health http://${cfg.ingestHttpHost}:${ingest.httpPort()}/healthz metrics http://${cfg.ingestHttpHost}:${ingest.httpPort()}/metrics` : ''}`,
});
process.exit(code);
