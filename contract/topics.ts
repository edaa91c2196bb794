/**
 * MQTT topic names of protocol version 1. This is the only module that builds or parses topic
 * strings; every process goes through it. See docs/protocol.md.
 *
 *   carewatch/v1/{homeId}/{deviceId}/telemetry   device → platform, QoS 0 or 1
 *   carewatch/v1/{homeId}/{deviceId}/event       device → platform, QoS 1
 *   carewatch/v1/{homeId}/{deviceId}/status      device → platform, QoS 1, retained (+ last will)
 *   carewatch/v1/{homeId}/{deviceId}/command     platform → device
 *   carewatch/v1/{homeId}/alerts                 alerts process → integrations, QoS 1
 *   carewatch/v1/{homeId}/incidents              alerts process → integrations, QoS 1 (issue 11)
 */

export const TOPIC_ROOT = 'carewatch';
export const PROTOCOL_VERSION = 'v1';

export type DeviceChannel = 'telemetry' | 'event' | 'status' | 'command';
export const DEVICE_CHANNELS: readonly DeviceChannel[] = ['telemetry', 'event', 'status', 'command'];

/** Ids are restricted so that they can never contain MQTT wildcards or separators [MQTT-4.7.1]. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
const ID_RE = new RegExp(ID_PATTERN);

export function isValidId(id: string): boolean {
  return ID_RE.test(id);
}

function assertId(kind: string, id: string): void {
  if (!isValidId(id)) throw new Error(`invalid ${kind} id ${JSON.stringify(id)}: must match ${ID_PATTERN}`);
}

export function deviceTopic(homeId: string, deviceId: string, channel: DeviceChannel): string {
  assertId('home', homeId);
  assertId('device', deviceId);
  return `${TOPIC_ROOT}/${PROTOCOL_VERSION}/${homeId}/${deviceId}/${channel}`;
}

export function alertsTopic(homeId: string): string {
  assertId('home', homeId);
  return `${TOPIC_ROOT}/${PROTOCOL_VERSION}/${homeId}/alerts`;
}

export function incidentsTopic(homeId: string): string {
  assertId('home', homeId);
  return `${TOPIC_ROOT}/${PROTOCOL_VERSION}/${homeId}/incidents`;
}

/** Subscription filters used by the platform's service accounts. */
export const FILTERS = {
  telemetry: `${TOPIC_ROOT}/${PROTOCOL_VERSION}/+/+/telemetry`,
  event: `${TOPIC_ROOT}/${PROTOCOL_VERSION}/+/+/event`,
  status: `${TOPIC_ROOT}/${PROTOCOL_VERSION}/+/+/status`,
  alerts: `${TOPIC_ROOT}/${PROTOCOL_VERSION}/+/alerts`,
  incidents: `${TOPIC_ROOT}/${PROTOCOL_VERSION}/+/incidents`,
  everything: `${TOPIC_ROOT}/${PROTOCOL_VERSION}/#`,
} as const;

/**
 * The device filters of one home (`carewatch/v1/{homeId}/+/{channel}`): an instance of ingest or
 * alerts that owns a set of homes subscribes to these instead of FILTERS (docs/scaling.md "Services partitioned by home").
 * Each is narrower than the matching FILTERS entry, so a service's existing broker grant covers it.
 */
export function homeDeviceFilter(homeId: string, channel: 'telemetry' | 'event' | 'status'): string {
  assertId('home', homeId);
  return `${TOPIC_ROOT}/${PROTOCOL_VERSION}/${homeId}/+/${channel}`;
}

/**
 * A shared subscription [MQTT-5.0 §4.8.2] `$share/{group}/{filter}`: the broker delivers each
 * matching message to one subscriber of the group, so instances of a service split the load.
 * Mosquitto 2, EMQX, HiveMQ and VerneMQ support it (also for MQTT 3.1.1 clients); aedes 1.x does
 * not (it would take the string as a plain filter under a `$` topic and deliver nothing).
 */
export function sharedFilter(group: string, filter: string): string {
  assertId('share group', group);
  return `$share/${group}/${filter}`;
}

export function homeAlertsFilter(homeId: string): string {
  return alertsTopic(homeId);
}

export function deviceCommandTopic(homeId: string, deviceId: string): string {
  return deviceTopic(homeId, deviceId, 'command');
}

export type ParsedTopic =
  | { kind: 'device'; homeId: string; deviceId: string; channel: DeviceChannel }
  | { kind: 'alerts'; homeId: string }
  | { kind: 'incidents'; homeId: string };

/** Parses a concrete (wildcard-free) topic; returns null for anything outside protocol v1. */
export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split('/');
  if (parts[0] !== TOPIC_ROOT || parts[1] !== PROTOCOL_VERSION) return null;
  const homeId = parts[2];
  if (homeId === undefined || !isValidId(homeId)) return null;
  if (parts.length === 4 && parts[3] === 'alerts') return { kind: 'alerts', homeId };
  if (parts.length === 4 && parts[3] === 'incidents') return { kind: 'incidents', homeId };
  if (parts.length !== 5) return null;
  const deviceId = parts[3];
  const channel = parts[4];
  if (deviceId === undefined || !isValidId(deviceId)) return null;
  if (!(DEVICE_CHANNELS as readonly string[]).includes(channel ?? '')) return null;
  return { kind: 'device', homeId, deviceId, channel: channel as DeviceChannel };
}
