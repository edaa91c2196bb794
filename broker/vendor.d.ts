/** aedes-persistence-redis ships no types; we use only its constructor (ioredis options) and destroy(). */
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  export default class AsyncRedisPersistence {
    constructor(opts: { host: string; port: number; db?: number; username?: string; password?: string; tls?: object; maxRetriesPerRequest?: number; maxSessionDelivery?: number; conn?: import('ioredis').Redis });
    createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown> | import('node:stream').Readable;
    createRetainedStream(pattern: string): AsyncIterable<unknown> | import('node:stream').Readable;
    destroy(): Promise<void>;
  }
}

/** aedes-persistence's in-memory store (async API, as aedes 1.x calls it); we override its outgoing queue. */
declare module 'aedes-persistence/asyncPersistence.js' {
  /** aedes-packet's Packet as queued for a session. */
  export interface OutgoingPacket {
    brokerId?: string;
    brokerCounter?: number;
    messageId?: number | undefined;
  }
  export default class AsyncMemoryPersistence {
    constructor(opts?: object);
    setup(broker: unknown): Promise<void>;
    storeRetained(packet: object): Promise<void>;
    addSubscriptions(client: { id: string }, subs: ReadonlyArray<object>): Promise<void>;
    removeSubscriptions(client: { id: string }, topics: ReadonlyArray<string>): Promise<void>;
    cleanSubscriptions(client: { id: string }): Promise<void>;
    outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void>;
    outgoingEnqueueCombi(subs: ReadonlyArray<{ clientId: string }>, packet: object): Promise<void>;
    outgoingUpdate(client: { id: string }, packet: object): Promise<void>;
    outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
    outgoingStream(client: { id: string }): import('node:stream').Readable;
    destroy(): Promise<void>;
  }
}

/** msgpack-lite ships no types; aedes-persistence-redis stores wills with it, and we read them back. */
declare module 'msgpack-lite' {
  export function encode(value: unknown): Buffer;
  export function decode(buf: Buffer | Uint8Array): unknown;
}
