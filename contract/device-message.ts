import { TypeCompiler } from '@sinclair/typebox/compiler';
import { METRICS, isMetricName, outOfRange, type MetricName, type OutOfRange } from './metrics.ts';
import { DEVICE_KINDS } from './device-kinds.ts';
import { BROKER_STAMP_MAX_BYTES, EventPayload, MAX_DEVICE_PAYLOAD_BYTES, StatusPayload, TelemetryPayload } from './payloads.ts';
import { parseTopic } from './topics.ts';
import type { RegistryIndex } from './registry-index.ts';
import type { Device } from './registry.ts';

/**
 * Decoding and validation of one device message against the contract and the registry. Pure; used
 * by ingest (what it stores) and alerts (what it evaluates), so both accept exactly the same input.
 */

export const REJECT_CODES = [
  'BAD_TOPIC',
  'OVERSIZED',
  'MALFORMED_JSON',
  'SCHEMA',
  'UNKNOWN_DEVICE',
  'WRONG_HOME',
  'UNKNOWN_METRIC',
  'METRIC_NOT_ALLOWED',
  'WRONG_TYPE',
  'OUT_OF_RANGE',
  'EVENT_NOT_ALLOWED',
  'CLOCK_SKEW',
] as const;
export type RejectCode = (typeof REJECT_CODES)[number];

export interface Rejection {
  readonly ok: false;
  readonly code: RejectCode;
  readonly reason: string;
  readonly homeId?: string;
  readonly deviceId?: string;
}

export type DeviceMessage =
  | {
      readonly ok: true;
      readonly channel: 'telemetry';
      readonly device: Device;
      /**
       * The metrics that passed, out-of-range ones on their danger side at the limit; `dropped`
       * lists the refused ones with their reasons.
       */
      readonly payload: TelemetryPayload & { metrics: Partial<Record<MetricName, number | boolean>> };
      readonly dropped: readonly Rejection[];
      /** Readings outside their plausible range (contract/metrics.ts `outOfRange`), raw values kept: flagged, never silently lost. */
      readonly outOfRange: readonly OutOfRange[];
    }
  | {
      readonly ok: true;
      readonly channel: 'event';
      readonly device: Device;
      /** `ts` is the broker's stamp when `clockSkew` is set, else the device's own. */
      readonly payload: EventPayload;
      /** Set when the device's clock was outside the window: the message was re-stamped at the broker time. */
      readonly clockSkew?: ClockSkew;
    }
  | { readonly ok: true; readonly channel: 'status'; readonly device: Device; readonly payload: StatusPayload; readonly clockSkew?: ClockSkew };

/**
 * The plausible device clock, judged against the broker's receive stamp (`brokerTs`, the platform's
 * clock, on every message the broker forwards). A device `ts` is accepted as it is when
 *
 *     brokerTs − CLOCK_WINDOW.pastMs  ≤  ts  ≤  brokerTs + CLOCK_WINDOW.futureMs
 *
 * - future, 1 hour: nothing a device measured can lie in the future; only clock error can put it
 *   there. An NTP-synced device is within milliseconds of the platform (RFC 5905); a free-running
 *   32.768 kHz RTC crystal drifts ±20 ppm at room temperature and up to ~±100 ppm across its
 *   temperature range, which is ≤ 53 minutes after a whole year without a time sync. One hour
 *   covers that and refuses the usual broken clocks: local time sent as UTC (China: +8 h).
 * - past, 7 days: a device may send what it buffered while it could not reach the broker (the
 *   home's internet down, the platform down). A week covers a holiday-week outage of a home's line
 *   with nobody on site to fix it (e.g. the 7-8 day Spring Festival and National Day holidays) and is
 *   well inside the 30 days raw readings are kept (common/influx-schema.ts `DEFAULT_RETENTION`),
 *   beyond which InfluxDB would refuse a reading anyway. Older than that is far more likely a clock
 *   reset (1970 after a power loss without an RTC battery, 2000-01-01 RTC defaults, GPS week
 *   rollover) than a real buffer.
 *
 * Outside the window (docs/protocol.md "Device clock"):
 * - a reading is refused, CLOCK_SKEW: its meaning is bound to its time (rate-of-rise heat
 *   detection, EN 54-5 class R, and NEWS2 trends compare readings over time; a buffer flushed with
 *   one stamp would fake or mask a rise), and a detector's own alarm decision comes as an event;
 * - an event or a status is never dropped: it is taken at the broker's stamp and flagged with the
 *   device's own time (`clockSkew`). Events are the signals a person must get (fire alarm, call
 *   point, SOS, fall, tamper, fault: NFPA 72 has alarm, supervisory and trouble signals annunciated
 *   to a person), and a status says the device is online now, whatever its clock says.
 *
 * A message without `brokerTs` (only one that never passed a carewatch broker, e.g. in unit tests)
 * is not judged: there is no platform time to judge it by. Behind a broker that stamps nothing
 * (Mosquitto), the services stamp their own receive time instead (ReceiveStamp `service`).
 */
export const CLOCK_WINDOW = { futureMs: 60 * 60 * 1000, pastMs: 7 * 24 * 60 * 60 * 1000 } as const;

export interface ClockSkew {
  /** The device's own `ts`, replaced by `brokerTs` in the payload. */
  readonly deviceTs: number;
  readonly brokerTs: number;
  /** The device's time lies before or after the window. */
  readonly side: 'past' | 'future';
  readonly reason: string;
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

function span(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 48 ? `${Math.round(h / 24)} days` : h >= 1 ? `${h.toFixed(1)} h` : `${Math.round(ms / 1000)} s`;
}

/** Undefined when `ts` is inside the window around `brokerTs` (or there is no broker stamp). Pure. */
export function clockSkew(ts: number, brokerTs: number | undefined): ClockSkew | undefined {
  if (brokerTs === undefined) return undefined;
  const side = ts > brokerTs + CLOCK_WINDOW.futureMs ? 'future' : ts < brokerTs - CLOCK_WINDOW.pastMs ? 'past' : undefined;
  if (side === undefined) return undefined;
  const off = side === 'future' ? `${span(ts - brokerTs)} after` : `${span(brokerTs - ts)} before`;
  const reason =
    `device time ${iso(ts)} (ts ${ts}) is ${off} the broker's receive time ${iso(brokerTs)} (brokerTs ${brokerTs}); ` +
    `accepted: at most ${span(CLOCK_WINDOW.futureMs)} after, ${span(CLOCK_WINDOW.pastMs)} before`;
  return { deviceTs: ts, brokerTs, side, reason };
}

const checkTelemetry = TypeCompiler.Compile(TelemetryPayload);
const checkEvent = TypeCompiler.Compile(EventPayload);
const checkStatus = TypeCompiler.Compile(StatusPayload);

function firstSchemaError(errors: Iterable<{ path: string; message: string }>): string {
  for (const e of errors) return `${e.path || '/'}: ${e.message}`;
  return 'does not match the schema';
}

function metricProblem(device: Device, name: string, value: number | boolean): { code: RejectCode; reason: string } | undefined {
  if (!isMetricName(name)) return { code: 'UNKNOWN_METRIC', reason: `unknown metric "${name.slice(0, 64)}"` };
  if (!(DEVICE_KINDS[device.kind].metrics as readonly string[]).includes(name)) return { code: 'METRIC_NOT_ALLOWED', reason: `a ${device.kind} does not send "${name}"` };
  const spec = METRICS[name];
  if (typeof value !== spec.type) return { code: 'WRONG_TYPE', reason: `metric "${name}" must be a ${spec.type}, got ${typeof value}` };
  if (typeof value === 'number' && !Number.isFinite(value)) return { code: 'WRONG_TYPE', reason: `metric "${name}" must be finite` };
  return undefined;
}

/**
 * Who stamps the platform's receive time (`brokerTs`) on a device message:
 * - `broker`: carewatch's broker (aedes hooks, broker/status.ts) appends it to every message it
 *   forwards, and adds `ts` to a device's will; the services take the payload as it comes.
 * - `service`: a broker without those hooks (Mosquitto, docs/broker.md "Mosquitto") forwards the
 *   device's bytes unchanged, so any `brokerTs` in them was written by the device. The service
 *   replaces it with its own receive time (`receivedMs`) before the clock window is judged, and
 *   completes a will (`{"online":false}`, no `ts`) as the broker would have.
 */
export type ReceiveStamp = 'broker' | 'service';
export const RECEIVE_STAMPS: readonly ReceiveStamp[] = ['broker', 'service'];

/**
 * What a service stamps on a message when the broker does not (ReceiveStamp `service`). Pure on its
 * input: the device's own `brokerTs` is overwritten (it could otherwise move the clock window), and
 * a status without `ts` (a will composed at CONNECT, published by the broker on a lost connection)
 * is taken at the receive time with reason `connection_lost`, like broker/status.ts `stampWill`.
 */
function stampOnReceipt(channel: 'telemetry' | 'event' | 'status', json: unknown, receivedMs: number): unknown {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return json;
  const src = json as Record<string, unknown>;
  if (channel === 'status' && src.ts === undefined) {
    return { ...src, ts: receivedMs, online: false, reason: typeof src.reason === 'string' ? src.reason : 'connection_lost', brokerTs: receivedMs };
  }
  return { ...src, brokerTs: receivedMs };
}

/**
 * `receivedMs`: set when the service stamps the receive time itself (ReceiveStamp `service`); left
 * out when the broker did (carewatch's broker).
 */
export function decodeDeviceMessage(topic: string, payload: Uint8Array, registry: RegistryIndex, receivedMs?: number): DeviceMessage | Rejection {
  const parsed = parseTopic(topic);
  if (parsed === null || parsed.kind !== 'device' || parsed.channel === 'command') {
    return { ok: false, code: 'BAD_TOPIC', reason: `topic "${topic.slice(0, 200)}" is not a v1 device telemetry/event/status topic` };
  }
  const ids = { homeId: parsed.homeId, deviceId: parsed.deviceId };
  // The broker refuses device payloads over MAX_DEVICE_PAYLOAD_BYTES and then appends its receive
  // stamp; a broker that stamps nothing (and cannot bound payloads per account) forwards them as sent.
  if (payload.byteLength > MAX_DEVICE_PAYLOAD_BYTES + (receivedMs === undefined ? BROKER_STAMP_MAX_BYTES : 0)) {
    return { ok: false, code: 'OVERSIZED', reason: `payload of ${payload.byteLength} bytes exceeds ${MAX_DEVICE_PAYLOAD_BYTES}`, ...ids };
  }
  const device = registry.device(parsed.deviceId);
  if (device === undefined) return { ok: false, code: 'UNKNOWN_DEVICE', reason: `device "${parsed.deviceId}" is not in the registry`, ...ids };
  if (device.homeId !== parsed.homeId) {
    return { ok: false, code: 'WRONG_HOME', reason: `device "${device.id}" belongs to home "${device.homeId}", not "${parsed.homeId}"`, ...ids };
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch (err) {
    return { ok: false, code: 'MALFORMED_JSON', reason: `payload is not JSON: ${(err as Error).message}`, ...ids };
  }
  if (receivedMs !== undefined) json = stampOnReceipt(parsed.channel, json, receivedMs);
  const kind = DEVICE_KINDS[device.kind];
  switch (parsed.channel) {
    case 'telemetry': {
      if (!checkTelemetry.Check(json)) return { ok: false, code: 'SCHEMA', reason: `telemetry ${firstSchemaError(checkTelemetry.Errors(json))}`, ...ids };
      const skew = clockSkew(json.ts, json.brokerTs);
      if (skew !== undefined) return { ok: false, code: 'CLOCK_SKEW', reason: `reading refused: ${skew.reason}`, ...ids };
      // Metrics are judged one by one: a heat element reading past its range in a real fire, or a
      // detached temperature probe, must not take the smoke reading or the SpO2 down with it.
      const metrics: Partial<Record<MetricName, number | boolean>> = {};
      const dropped: Rejection[] = [];
      const flagged: OutOfRange[] = [];
      for (const [name, value] of Object.entries(json.metrics)) {
        const problem = metricProblem(device, name, value);
        if (problem !== undefined) {
          dropped.push({ ok: false, ...problem, ...ids });
          continue;
        }
        // A value past its plausible range is a saturated or failing sensor, but on the side where
        // it can mean danger (heat above 200 °C in a fire) it is taken at the limit, and never lost.
        const off = typeof value === 'number' ? outOfRange(name as MetricName, value) : undefined;
        if (off === undefined) metrics[name as MetricName] = value;
        else {
          flagged.push(off);
          if (off.atLimit) metrics[name as MetricName] = off.limit;
        }
      }
      const first = dropped[0];
      // Out-of-range readings keep the message: the device is alive and the flag must reach the rules.
      if (first !== undefined && Object.keys(metrics).length === 0 && flagged.length === 0) return first;
      return { ok: true, channel: 'telemetry', device, payload: { ...json, metrics }, dropped, outOfRange: flagged };
    }
    case 'event': {
      if (!checkEvent.Check(json)) return { ok: false, code: 'SCHEMA', reason: `event ${firstSchemaError(checkEvent.Errors(json))}`, ...ids };
      if (!(kind.events as readonly string[]).includes(json.type)) {
        return { ok: false, code: 'EVENT_NOT_ALLOWED', reason: `a ${device.kind} does not send "${json.type}" events`, ...ids };
      }
      const skew = clockSkew(json.ts, json.brokerTs);
      // Never dropped for a broken clock: a fire alarm must reach a person (see CLOCK_WINDOW).
      if (skew !== undefined) return { ok: true, channel: 'event', device, payload: { ...json, ts: skew.brokerTs }, clockSkew: skew };
      return { ok: true, channel: 'event', device, payload: json };
    }
    case 'status': {
      if (!checkStatus.Check(json)) return { ok: false, code: 'SCHEMA', reason: `status ${firstSchemaError(checkStatus.Errors(json))}`, ...ids };
      const skew = clockSkew(json.ts, json.brokerTs);
      if (skew !== undefined) return { ok: true, channel: 'status', device, payload: { ...json, ts: skew.brokerTs }, clockSkew: skew };
      return { ok: true, channel: 'status', device, payload: json };
    }
  }
}
