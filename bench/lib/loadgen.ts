import { fileURLToPath } from 'node:url';
import { nodeArgs, spawnWithUlimit, type Child } from './processes.ts';
import type { ConnectResult, LoadgenCommand, LoadgenReply, ReconnectReport, RunResult, StatsResult, TriggerResult } from './loadgen-protocol.ts';

const MAIN = fileURLToPath(new URL('./loadgen-main.ts', import.meta.url));

/** The runner's handle on one load-generator child process. */
export interface Loadgen {
  readonly child: Child;
  connect(cmd: Omit<Extract<LoadgenCommand, { op: 'connect' }>, 'op'>): Promise<ConnectResult>;
  subscriber(cmd: Omit<Extract<LoadgenCommand, { op: 'subscriber' }>, 'op'>): Promise<unknown>;
  run(cmd: Omit<Extract<LoadgenCommand, { op: 'run' }>, 'op'>): Promise<RunResult>;
  waitConnected(count: number, timeoutMs: number): Promise<{ connected: number; ms: number }>;
  stats(): Promise<StatsResult>;
  resetReconnects(): Promise<void>;
  reconnectReport(): Promise<ReconnectReport>;
  stopRun(): Promise<void>;
  dashboards(url: string, users: readonly { username: string; password: string }[], timeoutMs: number): Promise<{ connected: number }>;
  trigger(cmd: Omit<Extract<LoadgenCommand, { op: 'trigger' }>, 'op'>): Promise<TriggerResult>;
  disconnect(): Promise<void>;
  close(): Promise<void>;
}

/** `nice`: the scheduling niceness of the generator process (default: the runner's own). */
export async function startLoadgen(opts: { nice?: number } = {}): Promise<Loadgen> {
  const child = spawnWithUlimit('loadgen', nodeArgs(MAIN, ['--max-old-space-size=4096']), { ipc: true, ...(opts.nice !== undefined ? { nice: opts.nice } : {}) });
  let next = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let ready: () => void = () => undefined;
  const readyP = new Promise<void>((r) => (ready = r));
  child.proc.on('message', (m: { id: number; reply: LoadgenReply }) => {
    if (m.id === 0) return ready();
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.reply.ok) w.resolve(m.reply.result);
    else w.reject(new Error(`loadgen: ${m.reply.error}`));
  });
  // 'close', not 'exit': its stderr (a V8 "heap out of memory", a signal's cause) has been read by then.
  child.proc.once('close', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`loadgen exited (code ${code}, signal ${signal}): ${child.tail()}`));
    waiting.clear();
  });
  await Promise.race([readyP, new Promise((_, rej) => setTimeout(() => rej(new Error(`loadgen did not start: ${child.tail()}`)), 30_000))]);
  const call = <T>(cmd: LoadgenCommand): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      // With a callback a closed channel rejects this call instead of an unhandled 'error' event on
      // the child (a stats poll after the generator was stopped crashed the runner).
      child.proc.send({ id, cmd }, (err) => {
        if (err === null) return;
        waiting.delete(id);
        reject(new Error(`loadgen: ${err.message}`));
      });
    });
  return {
    child,
    connect: (c) => call({ op: 'connect', ...c }),
    subscriber: (c) => call({ op: 'subscriber', ...c }),
    run: (c) => call({ op: 'run', ...c }),
    waitConnected: (count, timeoutMs) => call({ op: 'waitConnected', count, timeoutMs }),
    stats: () => call({ op: 'stats' }),
    resetReconnects: async () => {
      await call({ op: 'resetReconnects' });
    },
    reconnectReport: () => call({ op: 'reconnectReport' }),
    stopRun: async () => {
      await call({ op: 'stopRun' });
    },
    dashboards: (url, users, timeoutMs) => call({ op: 'dashboards', url, users, timeoutMs }),
    trigger: (c) => call({ op: 'trigger', ...c }),
    disconnect: async () => {
      await call({ op: 'disconnect' });
    },
    close: async () => {
      if (child.proc.connected) await Promise.race([call({ op: 'exit' }), new Promise((r) => setTimeout(r, 2000))]);
      await child.stop('SIGTERM', 3000);
    },
  };
}
