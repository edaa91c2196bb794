/**
 * Bounds the memory one connection can make the broker buffer.
 *
 * mqtt-packet 9's parser has no maximum packet size: it appends to a buffer list until the
 * declared Remaining Length (up to 256 MB [MQTT-2.2.3]) has arrived, and aedes 1.2 exposes no
 * option for it. authorizePublish runs only after the whole packet is parsed, so it cannot stop a
 * client that declares 256 MB and trickles it in. We therefore wrap the parser's length state of
 * each connection: as soon as the Remaining Length is decoded and exceeds the limit, the parser
 * raises an error, aedes emits `clientError` and closes only that connection.
 *
 * This reaches into aedes' per-client parser (`client._parser`, mqtt-packet's `_parseLength`),
 * which are not public API; broker.test.ts proves it still works after an upgrade.
 */
interface LengthParser {
  packet: { length: number; cmd?: string };
  _parseLength(): boolean;
  _emitError(err: Error): void;
}

export class PacketTooLargeError extends Error {
  readonly code = 'BROKER_PACKET_TOO_LARGE';
}

function isLengthParser(p: unknown): p is LengthParser {
  return typeof p === 'object' && p !== null && typeof (p as LengthParser)._parseLength === 'function' && typeof (p as LengthParser)._emitError === 'function';
}

/** Returns false if the client object does not have the expected parser (aedes changed). */
export function guardPacketSize(client: unknown, maxBytes: number): boolean {
  const parser = (client as { _parser?: unknown })._parser;
  if (!isLengthParser(parser)) return false;
  const original = parser._parseLength;
  parser._parseLength = function guardedParseLength(this: LengthParser): boolean {
    const ok = original.call(this);
    if (ok && this.packet.length > maxBytes) {
      this._emitError(new PacketTooLargeError(`${this.packet.cmd ?? 'packet'} of ${this.packet.length} bytes exceeds the ${maxBytes}-byte limit`));
      return false;
    }
    return ok;
  };
  return true;
}
