import { isDemoSecret } from '../common/secrets.ts';
import { MAX_DEVICE_PAYLOAD_BYTES } from '../contract/payloads.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import type { ServiceRole } from '../contract/registry.ts';
import { FILTERS, deviceCommandTopic, deviceTopic, parseTopic } from '../contract/topics.ts';
import { filterWithin, hasWildcard, isValidFilter, topicMatches } from './topic-filter.ts';

/**
 * The broker's access policy as pure functions of (registry, production flag, identity, packet).
 * broker.ts adapts them to aedes hooks; they never touch a socket, so every rule is unit-tested.
 */

export interface PolicyContext {
  readonly registry: RegistryIndex;
  /** NODE_ENV=production: demo secrets are refused. */
  readonly production: boolean;
}

/** Stable reason codes: logged with every refusal and counted in stats(). */
export const REFUSAL_CODES = [
  'BROKER_NO_CREDENTIALS',
  'BROKER_UNKNOWN_ACCOUNT',
  'BROKER_BAD_PASSWORD',
  'BROKER_AUTH_THROTTLED',
  'BROKER_DEMO_SECRET_IN_PRODUCTION',
  'BROKER_CLIENT_ID_MISMATCH',
  'BROKER_PROTOCOL_VERSION',
  'BROKER_WILL_NOT_OWN_STATUS',
  'BROKER_SYS_TOPIC',
  'BROKER_WILDCARD_IN_PUBLISH',
  'BROKER_NOT_V1_TOPIC',
  'BROKER_PUBLISH_DENIED',
  'BROKER_RETAIN_DENIED',
  'BROKER_PAYLOAD_TOO_LARGE',
  'BROKER_SUBSCRIBE_DENIED',
  'BROKER_FORWARD_DENIED',
  'BROKER_PACKET_TOO_LARGE',
  'BROKER_CLIENT_ERROR',
  /** A connection to a TLS port that did not complete the handshake (plain MQTT, an untrusted or expired peer, a scanner). */
  'BROKER_TLS_HANDSHAKE_FAILED',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

export interface Refusal {
  readonly ok: false;
  readonly code: RefusalCode;
  readonly reason: string;
  /**
   * CONNACK return code for connect refusals [MQTT-3.2.2-5]: 1 protocol, 2 identifier, 3 server
   * unavailable (too many failed attempts from the address, password not checked), 4 bad
   * credentials, 5 not authorised.
   */
  readonly returnCode?: 1 | 2 | 3 | 4 | 5;
}

export type Identity =
  | {
      readonly kind: 'device';
      readonly id: string;
      readonly homeId: string;
      readonly statusTopic: string;
      readonly commandTopic: string;
      /** The only topics the device may publish to. */
      readonly publishTopics: ReadonlySet<string>;
    }
  | { readonly kind: 'service'; readonly id: string; readonly role: ServiceRole; readonly subscribeFilters: readonly string[] };

/** What each service role may subscribe to (a grant; narrower filters are allowed too). */
export const SERVICE_SUBSCRIBE_GRANTS: Readonly<Record<ServiceRole, readonly string[]>> = {
  ingest: [FILTERS.telemetry, FILTERS.event, FILTERS.status],
  alerts: [FILTERS.telemetry, FILTERS.event, FILTERS.status],
  integration: [FILTERS.alerts, FILTERS.incidents],
  simulator: [FILTERS.alerts, FILTERS.incidents],
};

/** Channels a device may publish to; `command` flows only platform → device. */
const DEVICE_PUBLISH_CHANNELS = ['telemetry', 'event', 'status'] as const;
/** MQTT 3.1.1 is protocol level 4 [MQTT-3.1.2-2]; protocol v1 of carewatch is specified on it. */
export const MQTT_3_1_1 = 4;

export interface ConnectRequest {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly password: Buffer | string | undefined;
  readonly protocolVersion: number;
  readonly will?: { readonly topic: string } | null | undefined;
}

export interface Credentials {
  readonly ok: true;
  readonly identity: Identity;
  readonly password: string;
  /** The stored hash the password must match (common/secrets.ts formats; verified by the caller, broker/credentials.ts). */
  readonly secretHash: string;
  /** False when the client set a will that is not its own status topic: the broker drops the will. */
  readonly willAllowed: boolean;
}

function refuse(code: RefusalCode, reason: string, returnCode?: Refusal['returnCode']): Refusal {
  return returnCode === undefined ? { ok: false, code, reason } : { ok: false, code, reason, returnCode };
}

export function deviceIdentity(id: string, homeId: string): Identity {
  return {
    kind: 'device',
    id,
    homeId,
    statusTopic: deviceTopic(homeId, id, 'status'),
    commandTopic: deviceCommandTopic(homeId, id),
    publishTopics: new Set(DEVICE_PUBLISH_CHANNELS.map((c) => deviceTopic(homeId, id, c))),
  };
}

/**
 * First, synchronous half of authentication: finds the account, applies the production and
 * client-id rules, and returns the hash to verify. The verification is the caller's (HMAC for
 * machine secrets, scrypt in older registries, see credentials.ts) and so is throttling wrong
 * answers (auth-throttle.ts).
 */
export function checkConnect(ctx: PolicyContext, req: ConnectRequest): Credentials | Refusal {
  if (req.protocolVersion !== MQTT_3_1_1) {
    return refuse('BROKER_PROTOCOL_VERSION', `MQTT protocol level ${req.protocolVersion} refused: carewatch v1 speaks MQTT 3.1.1 (level 4)`, 1);
  }
  const username = req.username;
  if (username === undefined || username === '' || req.password === undefined) {
    return refuse('BROKER_NO_CREDENTIALS', 'username and password are required', 4);
  }
  const password = typeof req.password === 'string' ? req.password : req.password.toString('utf8');
  const device = ctx.registry.device(username);
  const service = device === undefined ? ctx.registry.service(username) : undefined;
  const account = device ?? service;
  if (account === undefined) return refuse('BROKER_UNKNOWN_ACCOUNT', `no device or service account "${username.slice(0, 64)}"`, 4);
  if (ctx.production && (account.demoSecret === true || isDemoSecret(password))) {
    return refuse('BROKER_DEMO_SECRET_IN_PRODUCTION', `account "${username}" uses a demo secret, refused in production mode`, 5);
  }
  // [MQTT-3.1.3-2] the client id identifies the session; it must belong to the account so one
  // account cannot take over (and so disconnect, [MQTT-3.1.4-2]) another account's session.
  const idOk = device !== undefined ? req.clientId === username : req.clientId === username || req.clientId.startsWith(`${username}-`);
  if (!idOk) {
    return refuse(
      'BROKER_CLIENT_ID_MISMATCH',
      `client id "${req.clientId.slice(0, 64)}" must be ${device !== undefined ? `"${username}"` : `"${username}" or start with "${username}-"`}`,
      2,
    );
  }
  let identity: Identity;
  if (device !== undefined) identity = deviceIdentity(device.id, device.homeId);
  else if (service !== undefined) identity = { kind: 'service', id: service.id, role: service.role, subscribeFilters: SERVICE_SUBSCRIBE_GRANTS[service.role] };
  else return refuse('BROKER_UNKNOWN_ACCOUNT', `no account "${username}"`, 4);
  const willAllowed = req.will == null || checkWill(identity, req.will.topic).ok;
  return { ok: true, identity, password, secretHash: account.secretHash, willAllowed };
}

/** A device's will may only mark itself offline: its own status topic. Services set no will. */
export function checkWill(identity: Identity, topic: string): { ok: true } | Refusal {
  if (identity.kind === 'device' && topic === identity.statusTopic) return { ok: true };
  return refuse('BROKER_WILL_NOT_OWN_STATUS', `will topic "${topic.slice(0, 200)}" is not ${identity.kind === 'device' ? identity.statusTopic : 'allowed for a service account'}`);
}

export interface PublishRequest {
  readonly topic: string;
  readonly payloadBytes: number;
  readonly retain: boolean;
}

function topicGuards(topic: string): Refusal | null {
  if (topic.startsWith('$')) return refuse('BROKER_SYS_TOPIC', `topic "${topic.slice(0, 200)}" is reserved [MQTT-4.7.2-1]`);
  // [MQTT-3.3.2-2] wildcards are not allowed in a PUBLISH topic name (aedes checks too).
  if (hasWildcard(topic)) return refuse('BROKER_WILDCARD_IN_PUBLISH', `topic "${topic.slice(0, 200)}" contains a wildcard`);
  return null;
}

export function authorizePublish(ctx: PolicyContext, identity: Identity, req: PublishRequest): { ok: true } | Refusal {
  const guard = topicGuards(req.topic);
  if (guard !== null) return guard;
  if (identity.kind === 'device') {
    // Hot path (every telemetry message): one Set lookup, no parsing.
    if (!identity.publishTopics.has(req.topic)) {
      return parseTopic(req.topic) === null
        ? refuse('BROKER_NOT_V1_TOPIC', `topic "${req.topic.slice(0, 200)}" is not a carewatch v1 topic`)
        : refuse('BROKER_PUBLISH_DENIED', `device "${identity.id}" may publish only under ${identity.homeId}/${identity.id}, not "${req.topic.slice(0, 200)}"`);
    }
    if (req.payloadBytes > MAX_DEVICE_PAYLOAD_BYTES) {
      return refuse('BROKER_PAYLOAD_TOO_LARGE', `payload of ${req.payloadBytes} bytes exceeds ${MAX_DEVICE_PAYLOAD_BYTES}`);
    }
    // Only status is retained: a retained event (a manual call point) would be replayed to every
    // new subscriber and raise the fire alarm again on each alerts restart.
    if (req.retain && req.topic !== identity.statusTopic) {
      return refuse('BROKER_RETAIN_DENIED', `retain is allowed only on ${identity.statusTopic}`);
    }
    return { ok: true };
  }
  const parsed = parseTopic(req.topic);
  if (parsed === null) return refuse('BROKER_NOT_V1_TOPIC', `topic "${req.topic.slice(0, 200)}" is not a carewatch v1 topic`);
  if (identity.role === 'alerts') {
    if (ctx.registry.home(parsed.homeId) === undefined) {
      return refuse('BROKER_PUBLISH_DENIED', `home "${parsed.homeId}" is not in the registry`);
    }
    if (parsed.kind === 'alerts' || parsed.kind === 'incidents') return { ok: true };
    if (parsed.channel === 'command') {
      const device = ctx.registry.device(parsed.deviceId);
      if (device !== undefined && device.homeId === parsed.homeId) return { ok: true };
      return refuse('BROKER_PUBLISH_DENIED', `no device "${parsed.deviceId}" in home "${parsed.homeId}"`);
    }
  }
  return refuse('BROKER_PUBLISH_DENIED', `service "${identity.id}" (${identity.role}) may not publish to "${req.topic.slice(0, 200)}"`);
}

export function authorizeSubscribe(_ctx: PolicyContext, identity: Identity, filter: string): { ok: true } | Refusal {
  if (filter.startsWith('$')) return refuse('BROKER_SYS_TOPIC', `filter "${filter.slice(0, 200)}" is reserved [MQTT-4.7.2-1]`);
  if (!isValidFilter(filter)) return refuse('BROKER_SUBSCRIBE_DENIED', `filter "${filter.slice(0, 200)}" is not a valid MQTT filter [MQTT-4.7.1-2]`);
  if (identity.kind === 'device') {
    if (filter === identity.commandTopic) return { ok: true };
    return refuse('BROKER_SUBSCRIBE_DENIED', `device "${identity.id}" may subscribe only to ${identity.commandTopic}`);
  }
  if (identity.subscribeFilters.some((grant) => filterWithin(filter, grant))) return { ok: true };
  return refuse('BROKER_SUBSCRIBE_DENIED', `service "${identity.id}" (${identity.role}) may not subscribe to "${filter.slice(0, 200)}"`);
}

/**
 * May this client receive a message on `topic`? Applied on delivery (aedes authorizeForward),
 * because aedes stores every filter of a SUBSCRIBE packet for a persistent session, refused ones
 * included, and queues offline messages for them; this check keeps those from being delivered.
 */
export function mayReceive(identity: Identity, topic: string): boolean {
  if (identity.kind === 'device') return topic === identity.commandTopic;
  for (const grant of identity.subscribeFilters) if (topicMatches(grant, topic)) return true;
  return false;
}
