import type { StatusPayload } from '../contract/payloads.ts';

/**
 * Status messages the broker writes on a device's behalf. Pure: the caller passes the time.
 *
 * Reasons: `connection_lost` (the connection died without DISCONNECT and without a valid will, or
 * the will had no timestamp), `disconnected` (clean DISCONNECT [MQTT-3.14.4-3]: the will is
 * discarded, but a device that leaves is offline all the same).
 */
export type OfflineReason = 'connection_lost' | 'disconnected';

export function offlineStatus(now: number, reason: OfflineReason): Buffer {
  const payload: StatusPayload = { ts: now, brokerTs: now, online: false, reason };
  return Buffer.from(JSON.stringify(payload));
}

/**
 * A device composes its will at CONNECT time, so it cannot know when it will die: the contract's
 * will is `{"online":false}` without `ts`, which StatusPayload requires. At publication the broker
 * adds `ts` (broker clock) and `reason: "connection_lost"` when missing, and forces `online:false`
 * so a will can never claim the device is up. A will payload that is not a JSON object is replaced
 * by the broker's own offline status.
 */
const CLOSE_BRACE = 0x7d;
const OPEN_BRACE = 0x7b;
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Appends the broker's receive time to a device message, `{…}` → `{…,"brokerTs":<now>}`, without
 * parsing it (this runs for every message). Being the last key, it wins over any `brokerTs` a device
 * put in itself (JSON keeps the last of duplicate keys). A payload that is not a JSON object is
 * forwarded unchanged: ingest and alerts reject it with their own reason.
 */
export function stampReceived(payload: Buffer, now: number): Buffer {
  let end = payload.length - 1;
  while (end >= 0 && WHITESPACE.has(payload[end] as number)) end--;
  if (end < 1 || payload[end] !== CLOSE_BRACE) return payload;
  let start = 0;
  while (start < end && WHITESPACE.has(payload[start] as number)) start++;
  if (payload[start] !== OPEN_BRACE) return payload;
  let inner = end - 1;
  while (inner > start && WHITESPACE.has(payload[inner] as number)) inner--;
  const empty = inner === start;
  return Buffer.concat([payload.subarray(0, end), Buffer.from(`${empty ? '' : ','}"brokerTs":${now}}`)]);
}

export function stampWill(payload: Buffer, now: number): Buffer {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return offlineStatus(now, 'connection_lost');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return offlineStatus(now, 'connection_lost');
  const src = json as Record<string, unknown>;
  const out: Record<string, unknown> = { ts: now, brokerTs: now, online: false, reason: 'connection_lost' };
  if (typeof src.reason === 'string' && src.reason.length <= 64) out.reason = src.reason;
  if (typeof src.firmware === 'string' && src.firmware.length <= 32) out.firmware = src.firmware;
  return Buffer.from(JSON.stringify(out));
}
