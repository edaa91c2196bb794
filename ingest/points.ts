import { escapeKey, fieldFloat, fieldString } from '../common/influx/line-protocol.ts';
import type { ClockSkew, DeviceMessage, RejectCode, Rejection } from '../contract/device-message.ts';

/**
 * Pure mapping from decoded device messages to InfluxDB 1.x line protocol, per the schema in
 * docs/architecture.md, with the escapes of the one encoder (common/influx/line-protocol.ts). Lines
 * are built as plain strings: node-influx's point objects cost ~13 ms per 5,000-point batch on the
 * event loop (issue 6), and @influxdata/influxdb-client's Point is 2.7x slower than this string
 * building (bench/encoder.ts, bench/README.md "Line-protocol encoder").
 */

/** Stored with the `rejected` measurement; a raw payload is cut to this many bytes. */
export const REJECTED_PAYLOAD_BYTES = 512;

/** Code for a point InfluxDB itself refused (field type conflict, unparsable line). */
export const INFLUX_REJECTED = 'INFLUX_REJECTED';
export type IngestRejectCode = RejectCode | typeof INFLUX_REJECTED;

/**
 * InfluxDB 1.x stores time as int64 ns: 1677-09-21 … 2262-04-11. A device ts beyond that cannot be
 * stored at all; the point mapper turns it into an OUT_OF_RANGE rejection instead of a 400.
 */
export const MAX_INFLUX_MS = 9_223_372_036_853;

const fieldNumber = fieldFloat;

/** Device `ts` (ms) plus `seq mod 1e6` as ns, built as decimal text: ts*1e6 exceeds 2^53. */
export function deviceTimeNs(tsMs: number, seq: number): string {
  const sub = seq % 1_000_000;
  if (tsMs === 0) return String(sub);
  return `${tsMs}${String(sub).padStart(6, '0')}`;
}

/**
 * The ns part of a status point: one per state, so an online status and an offline one stamped in the
 * same millisecond (a device that drops right after saying it is online; a will Mosquitto publishes
 * and the service stamps on receipt) are two points, where they overwrote each other (a review of
 * session 26; CI lost the offline one), while a redelivered status still overwrites itself. An offline
 * sorts after an online of the same millisecond.
 */
function statusSubMs(online: boolean, reason: string | undefined): number {
  if (online) return 0;
  return reason === 'disconnected' ? 2 : reason === 'connection_lost' ? 3 : 1;
}

function tag(key: string, value: string | undefined): string {
  return value === undefined || value === '' ? '' : `,${key}=${escapeKey(value)}`;
}

type Ok = Extract<DeviceMessage, { ok: true }>;

/**
 * An event or status whose device clock was outside the window is stored at the broker's stamp
 * (contract/device-message.ts CLOCK_WINDOW) and flagged: `device_ts` keeps what the device said,
 * `clock_skew` which side of the window it fell on.
 */
function skewFields(skew: ClockSkew | undefined): string {
  return skew === undefined ? '' : `,clock_skew=${fieldString(skew.side)},device_ts=${skew.deviceTs}i`;
}

export type LineResult = { ok: true; line: string } | { ok: false; rejection: Rejection };

/** Line protocol of one valid message; tags sorted by key as InfluxDB prefers. */
export function messageLine(msg: Ok): LineResult {
  const d = msg.device;
  const p = msg.payload;
  if (p.ts > MAX_INFLUX_MS) {
    return { ok: false, rejection: { ok: false, code: 'OUT_OF_RANGE', reason: `ts ${p.ts} is beyond InfluxDB's time range (year 2262)`, homeId: d.homeId, deviceId: d.id } };
  }
  const baseTags = `,device=${escapeKey(d.id)},home=${escapeKey(d.homeId)},kind=${escapeKey(d.kind)}`;
  switch (msg.channel) {
    case 'telemetry': {
      const tp = msg.payload;
      let fields = '';
      for (const name in tp.metrics) {
        const v = tp.metrics[name as keyof typeof tp.metrics];
        if (v === undefined) continue;
        fields += `${escapeKey(name)}=${typeof v === 'boolean' ? (v ? 'true' : 'false') : fieldNumber(v)},`;
      }
      fields += `seq=${tp.seq}i`;
      // Out-of-range readings (contract/metrics.ts): the raw value is kept next to the metric (which
      // holds the limit on its danger side, or is absent), and the reading is flagged.
      if (msg.outOfRange.length > 0) {
        let names = '';
        for (const o of msg.outOfRange) {
          fields += `,${escapeKey(`${o.metric}_raw`)}=${fieldNumber(o.value)}`;
          names += names === '' ? o.metric : `,${o.metric}`;
        }
        fields += `,out_of_range=${fieldString(names)}`;
      }
      // The broker's receive stamp: device → broker latency per reading (GB 50440 timing).
      if (tp.brokerTs !== undefined) fields += `,broker_ts=${tp.brokerTs}i`;
      return { ok: true, line: `telemetry${baseTags}${tag('resident', d.residentId)}${tag('room', d.roomId)} ${fields} ${deviceTimeNs(tp.ts, tp.seq)}` };
    }
    case 'event': {
      const ep = msg.payload;
      let fields = `seq=${ep.seq}i`;
      if (ep.brokerTs !== undefined) fields += `,broker_ts=${ep.brokerTs}i`;
      if (ep.code !== undefined) fields += `,code=${fieldString(ep.code)}`;
      if (ep.detail !== undefined) fields += `,detail=${fieldString(ep.detail)}`;
      if (ep.ok !== undefined) fields += `,ok=${ep.ok ? 'true' : 'false'}`;
      fields += skewFields(msg.clockSkew);
      return { ok: true, line: `event${baseTags}${tag('resident', d.residentId)}${tag('room', d.roomId)}${tag('type', ep.type)} ${fields} ${deviceTimeNs(ep.ts, ep.seq)}` };
    }
    case 'status': {
      const sp = msg.payload;
      let fields = `online=${sp.online ? 'true' : 'false'}`;
      if (sp.reason !== undefined) fields += `,reason=${fieldString(sp.reason)}`;
      if (sp.brokerTs !== undefined) fields += `,broker_ts=${sp.brokerTs}i`;
      if (sp.firmware !== undefined) fields += `,firmware=${fieldString(sp.firmware)}`;
      fields += skewFields(msg.clockSkew);
      return { ok: true, line: `status${baseTags} ${fields} ${deviceTimeNs(sp.ts, statusSubMs(sp.online, sp.reason))}` };
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export interface RejectedInput {
  readonly code: IngestRejectCode;
  readonly reason: string;
  readonly homeId?: string;
  readonly deviceId?: string;
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly receivedMs: number;
  /**
   * A number unique to this message that stays the same when it is replayed (its spool position):
   * its `mod 1e6` is the ns part of the time, so two rejections in one ms stay distinct while a
   * replay overwrites itself.
   */
  readonly uniq: number;
}

export function rejectedLine(r: RejectedInput): string {
  const cut = r.payload.byteLength > REJECTED_PAYLOAD_BYTES ? r.payload.subarray(0, REJECTED_PAYLOAD_BYTES) : r.payload;
  const fields = `payload=${fieldString(utf8.decode(cut))},reason=${fieldString(r.reason)},topic=${fieldString(r.topic.slice(0, 512))}`;
  return `rejected,code=${escapeKey(r.code)}${tag('device', r.deviceId)}${tag('home', r.homeId)} ${fields} ${deviceTimeNs(r.receivedMs, r.uniq)}`;
}
