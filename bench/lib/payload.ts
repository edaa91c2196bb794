/**
 * Telemetry payloads for the load: valid protocol-v1 smoke-detector telemetry (contract/payloads.ts
 * TelemetryPayload, metrics a smoke_detector may send, inside their physical ranges), about 150
 * bytes. The contract forbids extra fields, so the send time is not in the payload: `seq` is unique
 * across the whole load generator and the generator keeps seq → send time (it also hosts the
 * subscriber, so one process clock measures publish → deliver).
 */
export function smokeTelemetry(seq: number, ts: number): Buffer {
  const v = seq % 1000;
  return Buffer.from(
    `{"ts":${ts},"seq":${seq},"metrics":{"smoke_obscuration_pct_per_m":${(0.01 + v / 100000).toFixed(5)},"temperature_c":${(21 + v / 1000).toFixed(3)},"battery_pct":${(90 + v / 100).toFixed(2)},"rssi_dbm":-${(60 + v / 100).toFixed(2)}}}`,
  );
}

/** Extracts `seq` without a full JSON.parse (the receiver must stay cheap). */
export function seqOf(payload: Buffer): number {
  const i = payload.indexOf('"seq":');
  if (i < 0) return -1;
  let n = 0;
  for (let p = i + 6; p < payload.length; p++) {
    const c = payload[p] as number;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return n;
}
