import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { SERVICE_SUBSCRIBE_GRANTS, deviceIdentity } from '../../broker/policy.ts';
import { verifySecret } from '../../common/secrets.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';
import { alertsTopic, deviceCommandTopic, incidentsTopic } from '../../contract/topics.ts';

/**
 * Mosquitto 2.0's configuration for a carewatch site, generated from the site registry: the same
 * accounts and the same access rules as carewatch's own broker (broker/policy.ts), in Mosquitto's
 * files (docs/broker.md "Mosquitto"). Pure apart from the random salts, which the caller may pass.
 *
 * Two listeners, each with its own password and ACL file (`per_listener_settings`):
 * - devices: `use_username_as_clientid`, so a device's session is always its own id and one device
 *   cannot take over (and so disconnect, [MQTT-3.1.4-2]) another's session, which carewatch's broker
 *   enforces by refusing a client id that is not the username (BROKER_CLIENT_ID_MISMATCH);
 * - services: the platform's accounts, which open several sessions each (`svc-alerts-signals`,
 *   `svc-ingest-1`), so Mosquitto must keep their own client ids. Bind it to an internal address.
 */

export interface Listener {
  readonly host: string;
  readonly port: number;
}

export interface MosquittoOptions {
  readonly devices: Listener;
  readonly services: Listener;
  /** Absolute directory the files are written to (the configuration names them by absolute path). */
  readonly dir: string;
  /** Absolute directory of Mosquitto's persistence file (mosquitto.db). */
  readonly dataDir: string;
  /** Where the registry came from, for the header. */
  readonly source: string;
  /**
   * The user Mosquitto runs as once started as root (its `user` option; Mosquitto's default is
   * `mosquitto`). That user must be able to read the password files (mode 0600) and write dataDir.
   */
  readonly runAs?: string;
}

export interface MosquittoFiles {
  readonly 'mosquitto.conf': string;
  readonly 'devices.passwd': string;
  readonly 'devices.acl': string;
  readonly 'services.passwd': string;
  readonly 'services.acl': string;
}

/**
 * Mosquitto 2's password hash, `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512 (RFC 8018) over a
 * 12-byte salt, 64 bytes, base64, as `mosquitto_passwd` writes it (checked against its output in
 * test/deploy/mosquitto-files.test.ts). 101 iterations is mosquitto_passwd's default; the secrets are
 * 128-bit machine secrets, for which a costlier derivation adds no security (docs/broker.md
 * "Device secrets: why a fast hash").
 */
export const PBKDF2_ITERATIONS = 101;
export const SALT_BYTES = 12;

export function mosquittoPasswordHash(secret: string, salt: Buffer = randomBytes(SALT_BYTES), iterations = PBKDF2_ITERATIONS): string {
  const hash = pbkdf2Sync(secret, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Every device may publish only its own telemetry, event and status, and read only its own commands. */
export function deviceAcl(registry: RegistryIndex): string {
  const out: string[] = ['# Devices: each may publish only under its own home and id (broker/policy.ts authorizePublish).', ''];
  for (const d of registry.site.devices) {
    const id = deviceIdentity(d.id, d.homeId);
    if (id.kind !== 'device') throw new Error(`not a device identity: ${d.id}`);
    out.push(`user ${d.id}`);
    for (const topic of id.publishTopics) out.push(`topic write ${topic}`);
    out.push(`topic read ${id.commandTopic}`, '');
  }
  return out.join('\n');
}

/**
 * Service accounts: what they may subscribe to (SERVICE_SUBSCRIBE_GRANTS, the broker's own table) and,
 * for the alerts role, the alert and incident topics of every registered home and the command topic
 * of every registered device (as broker/policy.ts authorizePublish allows).
 */
export function serviceAcl(registry: RegistryIndex): string {
  const out: string[] = ['# Service accounts (broker/policy.ts SERVICE_SUBSCRIBE_GRANTS and authorizePublish).', ''];
  for (const s of registry.site.services) {
    out.push(`user ${s.id}`);
    for (const filter of SERVICE_SUBSCRIBE_GRANTS[s.role]) out.push(`topic read ${filter}`);
    if (s.role === 'alerts') {
      for (const h of registry.site.homes) out.push(`topic write ${alertsTopic(h.id)}`, `topic write ${incidentsTopic(h.id)}`);
      for (const d of registry.site.devices) out.push(`topic write ${deviceCommandTopic(d.homeId, d.id)}`);
    }
    out.push('');
  }
  return out.join('\n');
}

export interface SecretsResult {
  readonly secrets: ReadonlyMap<string, string>;
  /** One line per account without a usable secret; the caller refuses to write anything then. */
  readonly problems: readonly string[];
}

/**
 * The secret of every device and service account, each checked against the registry's hash, so a
 * password file never holds a secret the carewatch broker would refuse. `given`: id → secret (the
 * provisioning output). `demo`: accounts marked `demoSecret` use `demo-<id>` (config/demo-site.ts).
 */
export async function resolveSecrets(registry: RegistryIndex, given: Readonly<Record<string, string>>, demo: boolean): Promise<SecretsResult> {
  const secrets = new Map<string, string>();
  const problems: string[] = [];
  const accounts = [...registry.site.devices.map((d) => ({ id: d.id, secretHash: d.secretHash, demoSecret: d.demoSecret })), ...registry.site.services];
  for (const a of accounts) {
    const secret = given[a.id] ?? (demo && a.demoSecret === true ? `demo-${a.id}` : undefined);
    if (secret === undefined) {
      problems.push(`${a.id}: no secret given${a.demoSecret === true ? ' (a demo account: --demo-secrets)' : ''}`);
      continue;
    }
    if (!(await verifySecret(secret, a.secretHash))) {
      problems.push(`${a.id}: the secret given does not match the registry's hash`);
      continue;
    }
    secrets.set(a.id, secret);
  }
  for (const id of Object.keys(given)) {
    if (registry.device(id) === undefined && registry.service(id) === undefined) problems.push(`${id}: not a device or service account of the registry`);
  }
  return { secrets, problems };
}

function passwordFile(ids: readonly string[], secrets: ReadonlyMap<string, string>, salt: () => Buffer): string {
  const lines: string[] = [];
  for (const id of ids) {
    const secret = secrets.get(id);
    if (secret === undefined) throw new Error(`no secret for ${id}`);
    lines.push(`${id}:${mosquittoPasswordHash(secret, salt())}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

export function mosquittoConf(opts: MosquittoOptions): string {
  const dir = opts.dir.endsWith('/') ? opts.dir : `${opts.dir}/`;
  const dataDir = opts.dataDir.endsWith('/') ? opts.dataDir : `${opts.dataDir}/`;
  return [
    `# Generated by scripts/mosquitto-config.ts from ${opts.source}. Do not edit: regenerate (docs/broker.md "Mosquitto").`,
    '# Run as the main configuration: mosquitto -c <this file>.',
    '',
    '# One password and ACL file per listener: devices and services are told apart by where they connect.',
    'per_listener_settings true',
    ...(opts.runAs !== undefined ? ['# Started as root, Mosquitto switches to this user, who must read the .passwd files and write persistence_location.', `user ${opts.runAs}`] : []),
    '',
    '# Sessions, queued QoS 1 messages and retained statuses survive a restart. Mosquitto writes them',
    '# as a snapshot every autosave_interval seconds and at a clean shutdown, not before each PUBACK:',
    '# a crash loses what was acknowledged since the last snapshot (docs/broker.md "Mosquitto").',
    'persistence true',
    `persistence_location ${dataDir}`,
    'autosave_interval 5',
    '',
    "# The services' persistent sessions must not drop messages while they restart (Mosquitto's default",
    '# is 1000 per client, then new messages are dropped); memory is the bound instead.',
    'max_queued_messages 0',
    '# Ingest acknowledges a whole group commit at once (one fdatasync): the default of 20 unacknowledged',
    '# deliveries per client would cap it at 20 messages per fdatasync.',
    'max_inflight_messages 1000',
    '# The same bound as carewatch\'s broker: no MQTT packet over 64 KiB (broker/packet-size-guard.ts).',
    'max_packet_size 65536',
    'set_tcp_nodelay true',
    '# A retained message is delivered only if its publisher may still publish it.',
    'check_retain_source true',
    '',
    `listener ${opts.devices.port} ${opts.devices.host}`,
    'protocol mqtt',
    'allow_anonymous false',
    'allow_zero_length_clientid false',
    'use_username_as_clientid true',
    `password_file ${dir}devices.passwd`,
    `acl_file ${dir}devices.acl`,
    '',
    `listener ${opts.services.port} ${opts.services.host}`,
    'protocol mqtt',
    'allow_anonymous false',
    'allow_zero_length_clientid false',
    `password_file ${dir}services.passwd`,
    `acl_file ${dir}services.acl`,
    '',
  ].join('\n');
}

/** All five files. `salt` is for tests; it defaults to 12 random bytes per account. */
export function mosquittoFiles(registry: RegistryIndex, secrets: ReadonlyMap<string, string>, opts: MosquittoOptions, salt: () => Buffer = () => randomBytes(SALT_BYTES)): MosquittoFiles {
  return {
    'mosquitto.conf': mosquittoConf(opts),
    'devices.passwd': passwordFile(registry.site.devices.map((d) => d.id), secrets, salt),
    'devices.acl': deviceAcl(registry),
    'services.passwd': passwordFile(registry.site.services.map((s) => s.id), secrets, salt),
    'services.acl': serviceAcl(registry),
  };
}
