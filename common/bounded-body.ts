/**
 * A fetch Response's body as text, reading at most `maxBytes`: undefined when it is longer (the rest
 * is cancelled, not read). For answers from peers whose size nobody bounds for us: InfluxDB's query
 * answers (common/influx/reader.ts) and the notification gateways' (alerts/notify/channel.ts). Without
 * it an answer that never ends is buffered until the caller's deadline (~150 MB/s on loopback; 1.5 GB
 * per attempt seen from a flooding gateway in session 21's hunt).
 */
export async function boundedText(res: Response, maxBytes: number): Promise<string | undefined> {
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
