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
  const payload: StatusPayload = { ts: now, online: false, reason };
  return Buffer.from(JSON.stringify(payload));
}

/**
 * A device composes its will at CONNECT time, so it cannot know when it will die: the contract's
 * will is `{"online":false}` without `ts`, which StatusPayload requires. At publication the broker
 * adds `ts` (broker clock) and `reason: "connection_lost"` when missing, and forces `online:false`
 * so a will can never claim the device is up. A will payload that is not a JSON object is replaced
 * by the broker's own offline status.
 */
export function stampWill(payload: Buffer, now: number): Buffer {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return offlineStatus(now, 'connection_lost');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return offlineStatus(now, 'connection_lost');
  const src = json as Record<string, unknown>;
  const out: Record<string, unknown> = { ts: now, online: false, reason: 'connection_lost' };
  if (typeof src.reason === 'string' && src.reason.length <= 64) out.reason = src.reason;
  if (typeof src.firmware === 'string' && src.firmware.length <= 32) out.firmware = src.firmware;
  return Buffer.from(JSON.stringify(out));
}
