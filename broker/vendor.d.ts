/** aedes-persistence-redis ships no types; we use only its constructor (ioredis options) and destroy(). */
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  export default class AsyncRedisPersistence {
    constructor(opts: { host: string; port: number; db?: number; username?: string; password?: string; tls?: object; maxRetriesPerRequest?: number; maxSessionDelivery?: number });
    createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown> | import('node:stream').Readable;
    createRetainedStream(pattern: string): AsyncIterable<unknown> | import('node:stream').Readable;
    destroy(): Promise<void>;
  }
}
