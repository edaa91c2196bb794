import { Type, type Static } from '@sinclair/typebox';
import { HOMES_PATTERN } from '../common/homes.ts';
import { isDemoSecret } from '../common/secrets.ts';
import type { EscalationPolicy, LadderStep } from './escalation.ts';
import type { NotifyConfig } from './notify/config.ts';

/** The alerts process's configuration; main.ts reads it from CAREWATCH_* variables with loadConfig. */
/** Three positive whole numbers of seconds, e.g. "60,180,30". */
const LADDER_PATTERN = '^[1-9]\\d{0,6},[1-9]\\d{0,6},[1-9]\\d{0,6}$';

export const AlertsConfigSchema = Type.Object({
  registry: Type.String({ minLength: 1, default: 'config/demo-site.json', description: 'path to the site registry JSON' }),
  // The subscribing sessions (common/mqtt-session.ts) speak MQTT over TCP or TLS only: a ws:// URL
  // used to pass this check and then fail at start.
  mqttUrl: Type.String({ pattern: '^(mqtt|mqtts)://', default: 'mqtt://127.0.0.1:1883', description: 'an mqtt:// or mqtts:// URL' }),
  /**
   * Issue 14, the alarm lane (docs/scaling.md "The alarm lane"): where the signals sessions (events and
   * statuses) and the alert publisher connect, when that is another broker node than mqttUrl's (which
   * then carries only the live telemetry feed). Unset: mqttUrl. The same CA (mqttCaFile) applies.
   */
  signalsMqttUrl: Type.Optional(Type.String({ pattern: '^(mqtt|mqtts)://', description: 'an mqtt:// or mqtts:// URL of the broker node for events, statuses and alert changes; default: CAREWATCH_MQTT_URL' })),
  mqttCaFile: Type.Optional(Type.String({ minLength: 1, description: "PEM CA certificate that signed the broker's TLS certificate (mqtts://); default: the system's roots" })),
  /** docs/broker.md "Mosquitto": `service` when the broker does not stamp the receive time (contract/device-message.ts ReceiveStamp). */
  receiveStamp: Type.Optional(Type.Union([Type.Literal('broker'), Type.Literal('service')], { default: 'broker', description: 'who stamps the receive time: broker (carewatch broker) or service (Mosquitto)' })),
  alertsPassword: Type.String({ minLength: 1, default: 'demo-svc-alerts', description: "the svc-alerts account's MQTT password" }),
  influxUrl: Type.String({ pattern: '^https?://', default: 'http://127.0.0.1:8086', description: 'an http:// URL of InfluxDB 1.x' }),
  influxDb: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'carewatch', description: 'an InfluxDB database name ([A-Za-z0-9_-])' }),
  httpHost: Type.String({ minLength: 1, default: '127.0.0.1' }),
  httpPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  alertsTlsCertFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate (chain, leaf first): with the key file, httpPort serves HTTPS only' })),
  alertsTlsKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of that certificate (a file, e.g. /run/secrets/alerts_tls_key)' })),
  stateDir: Type.String({ minLength: 1, default: '.tmp/state/alerts', description: 'a directory for rule snapshots and the alert journal' }),
  tokenSecret: Type.Optional(Type.String({ minLength: 32, description: 'a secret of at least 32 characters for signing login tokens' })),
  tokenTtlS: Type.Integer({ minimum: 60, maximum: 7 * 24 * 3600, default: 12 * 3600 }),
  dashboardDir: Type.String({ minLength: 1, default: 'dashboards/app' }),
  tickMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000 }),
  /** Issue 15: path to the notification channels and routing JSON (docs/alerts.md "Notifications"); absent = none. */
  notifyConfig: Type.Optional(Type.String({ minLength: 1, description: 'path to the notify config JSON (channels, routes, baseUrl)' })),
  /**
   * Issue 15: in production a channel may use plain http:// only to a loopback address (a gateway
   * sidecar on the same host), and only when this says so; everything else must be https://.
   */
  notifyAllowLoopbackHttp: Type.Optional(Type.Boolean({ default: false, description: 'true or false: in production, allow http:// channel URLs to 127.0.0.0/8, ::1 or localhost' })),
  /** Local night for bed-exit alerts, "HH:MM-HH:MM" (site local time; wraps midnight). */
  careNightHours: Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d-([01]\\d|2[0-3]):[0-5]\\d$', default: '21:00-06:00', description: 'HH:MM-HH:MM' }),
  /** The site's offset from UTC in minutes (China Standard Time, UTC+8, no daylight saving). */
  siteUtcOffsetMin: Type.Integer({ minimum: -720, maximum: 840, default: 480 }),
  /** A resident out of bed at night longer than this escalates (issue 4 default 30 min). */
  bedReturnWithinMin: Type.Integer({ minimum: 1, maximum: 720, default: 30 }),
  /**
   * The escalation ladder per severity for unacknowledged alerts: "directorAfterS,bureauAfterS,remindEveryS"
   * (docs/alerts.md; fire alarms follow the NFPA 72 positive alarm sequence instead, per home).
   */
  escalationCritical: Type.String({ pattern: LADDER_PATTERN, default: '60,180,30', description: 'directorAfterS,bureauAfterS,remindEveryS' }),
  escalationHigh: Type.String({ pattern: LADDER_PATTERN, default: '300,900,60', description: 'directorAfterS,bureauAfterS,remindEveryS' }),
  escalationMedium: Type.String({ pattern: LADDER_PATTERN, default: '900,3600,300', description: 'directorAfterS,bureauAfterS,remindEveryS' }),
  escalationLow: Type.String({ pattern: LADDER_PATTERN, default: '14400,86400,1800', description: 'directorAfterS,bureauAfterS,remindEveryS' }),
  /** How far back restore looks for open alerts, days. */
  restoreDays: Type.Integer({ minimum: 1, maximum: 3650, default: 90 }),
  /**
   * Issue 14 (docs/scaling.md "Services partitioned by home"): the homes this instance owns, comma-separated ("h01,h02").
   * Unset: every home (one instance). Each instance subscribes to, evaluates and restores only these.
   */
  homes: Type.Optional(Type.String({ pattern: HOMES_PATTERN, description: 'comma-separated home ids this instance owns; unset for all homes' })),
  /** A name per instance ("a", "2"): its MQTT client ids become svc-alerts-<instance>[-signals|-telemetry]. */
  instance: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,11}$', description: 'instance name, 1-12 of [A-Za-z0-9_-]' })),
  /**
   * Where each owned home's rule state, open alerts and incidents are saved, one file per home
   * (default `<stateDir>/homes`). Instances that may take over each other's homes share it.
   */
  homeStateDir: Type.Optional(Type.String({ minLength: 1, description: 'a directory shared by the alerts instances (one file per home)' })),
  /** socket.io rooms across alerts nodes through Redis (@socket.io/redis-adapter), e.g. redis://127.0.0.1:6379. Unset: this node alone. */
  redisUrl: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'a redis:// URL' })),
  metricsToken: Type.Optional(Type.String({ minLength: 16, description: 'bearer token a scraper sends for /metrics and /health; unset: production serves neither, development serves them to anyone' })),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
});
export type AlertsConfig = Static<typeof AlertsConfigSchema>;

/** "21:00-06:00" → minutes after local midnight. The schema's pattern has already checked the form. */
export function parseNightHours(text: string): { nightStartMin: number; nightEndMin: number } {
  const [start = '', end = ''] = text.split('-');
  const minutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
  return { nightStartMin: minutes(start), nightEndMin: minutes(end) };
}

/** The four CAREWATCH_ESCALATION_* settings → the lifecycle's escalation policy. */
export function escalationPolicy(config: Pick<AlertsConfig, 'escalationCritical' | 'escalationHigh' | 'escalationMedium' | 'escalationLow'>): EscalationPolicy {
  const step = (text: string): LadderStep => {
    const [directorAfterS = 0, bureauAfterS = 0, remindEveryS = 0] = text.split(',').map(Number);
    return { directorAfterS, bureauAfterS, remindEveryS };
  };
  return {
    bySeverity: { critical: step(config.escalationCritical), high: step(config.escalationHigh), medium: step(config.escalationMedium), low: step(config.escalationLow) },
  };
}

/**
 * Host names that are never a real endpoint: the RFC 2606 / RFC 6761 reserved names (example.*,
 * *.example, *.test, *.invalid, *.localhost) as copied from docs/alerts.md, and the demo's own
 * notification receiver (docker-compose.yml service `notify-sink`, device-sim/notify-sink.ts).
 */
function isExampleHost(host: string): boolean {
  const labels = host.toLowerCase().replace(/\.$/, '').split('.');
  // A bare `localhost` is loopback (judged below); `*.localhost` names are never a real endpoint.
  return labels.includes('example') || ['test', 'invalid'].includes(labels.at(-1) ?? '') || (labels.length > 1 && labels.at(-1) === 'localhost') || labels[0] === 'notify-sink';
}

function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Issue 15, production mode: refuses a notification setup that would silently reach nobody, leak
 * residents' names in clear, or point at the demo. Each problem starts with its stable code
 * (alerts/errors.ts) and names the channel, never the secret. Pure: main.ts reads the file.
 */
export function notifyProductionProblems(notify: NotifyConfig | undefined, opts: { readonly allowLoopbackHttp: boolean }): string[] {
  if (notify === undefined) return ['ALERTS_NOTIFY_CONFIG_MISSING: CAREWATCH_NOTIFY_CONFIG is not set: required in production mode (alarms must reach the people on duty away from the page; docs/alerts.md "Notifications")'];
  const problems: string[] = [];
  const url = (where: string, text: string, page: boolean): void => {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      problems.push(`ALERTS_NOTIFY_DEMO_URL: ${where} is not a valid URL`);
      return;
    }
    const loopback = isLoopbackHost(u.hostname);
    if (isExampleHost(u.hostname) || text.includes('…') || (page && loopback)) problems.push(`ALERTS_NOTIFY_DEMO_URL: ${where} is a demo, example or loopback address (${u.hostname}): refused in production mode`);
    // The page link is opened on phones over mobile networks; a channel carries residents' names.
    else if (u.protocol === 'http:' && !(loopback && !page && opts.allowLoopbackHttp))
      problems.push(`ALERTS_NOTIFY_INSECURE_URL: ${where} is plain http:// (${u.host}): use https://${loopback && !page ? ', or set CAREWATCH_NOTIFY_ALLOW_LOOPBACK_HTTP=true for a gateway on this host' : ''}`);
    for (const [k, v] of u.searchParams) if (isDemoSecret(v)) problems.push(`ALERTS_NOTIFY_DEMO_SECRET: ${where} has a demo secret in its query parameter ${k}`);
  };
  url('notify config baseUrl', notify.baseUrl, true);
  for (const c of notify.channels) {
    const where = `notify channel ${c.id}`;
    url(`${where} url`, c.url, false);
    if ((c.type === 'webhook' || c.type === 'dingtalk') && c.secret !== undefined && isDemoSecret(c.secret)) problems.push(`ALERTS_NOTIFY_DEMO_SECRET: ${where} secret is a demo secret (starts with "demo-")`);
    if (c.type === 'sms') {
      for (const [k, v] of Object.entries(c.headers ?? {})) if (isDemoSecret(v) || /\bdemo-/.test(v)) problems.push(`ALERTS_NOTIFY_DEMO_SECRET: ${where} header ${k} carries a demo secret`);
      if (/\bdemo-/.test(c.bodyTemplate)) problems.push(`ALERTS_NOTIFY_DEMO_SECRET: ${where} bodyTemplate carries a demo secret`);
    }
  }
  return problems;
}
