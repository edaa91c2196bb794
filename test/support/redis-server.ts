import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../common/influxd.ts';
import { REDIS_PUBSUB_OUTPUT_LIMIT } from '../../broker/pubsub-resync.ts';

/**
 * A private redis-server (Debian's redis-server package) on 127.0.0.1 for broker persistence tests,
 * with the broker nodes' pub/sub output-buffer limit of docker-compose.cluster.yml.
 */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SIGSTOP: the server keeps its connections open and answers nothing (a Redis stalled, not gone) until resume(). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  close(): Promise<void>;
}

const BIN = '/usr/bin/redis-server';

function ping(port: number, password: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let reply = '';
    s.once('error', () => resolve(false));
    s.once('close', () => resolve(false));
    s.once('connect', () => s.write(`${password !== undefined ? `AUTH ${password}\r\n` : ''}PING\r\n`));
    s.on('data', (d) => {
      reply += d.toString();
      if (!reply.includes('\r\n', password !== undefined ? reply.indexOf('\r\n') + 2 : 0)) return;
      s.destroy();
      resolve(reply.includes('+PONG'));
    });
  });
}

/** `password`: the server asks for it (requirepass, as docker-compose's Redis does); `url` carries it. */
export async function createRedisServer(opts: { password?: string } = {}): Promise<RedisServer> {
  if (!existsSync(BIN)) throw new Error(`${BIN} not found: install Debian's redis-server package`);
  const dir = await mkdtemp(join(tmpdir(), 'carewatch-redis-'));
  const port = await freePort();
  const { password } = opts;
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    url: password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    port,
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      const auth = password === undefined ? [] : ['--requirepass', password];
      child = spawn(BIN, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--client-output-buffer-limit', REDIS_PUBSUB_OUTPUT_LIMIT, ...auth, '--daemonize', 'no'], { stdio: 'ignore' });
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        if (await ping(port, password)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('redis-server did not start within 15 s');
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    },
    pause() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGSTOP');
    },
    resume() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
    },
    async close() {
      // A paused server would never act on the SIGTERM.
      server.resume();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * A private redis-server started before the calling file's tests and closed after them (registers
 * the file's hooks); `.url` and the rest are read inside tests, once beforeAll has run.
 */
export function useRedisServer(opts: { password?: string } = {}): RedisServer {
  let redis: RedisServer | undefined;
  const started = (): RedisServer => {
    if (redis === undefined) throw new Error('useRedisServer(): read it inside a test, after beforeAll');
    return redis;
  };
  beforeAll(async () => {
    redis = await createRedisServer(opts);
    await redis.start();
  });
  afterAll(async () => {
    await redis?.close();
  });
  return {
    get url() {
      return started().url;
    },
    get port() {
      return started().port;
    },
    start: () => started().start(),
    stop: () => started().stop(),
    pause: () => started().pause(),
    resume: () => started().resume(),
    close: () => started().close(),
  };
}
