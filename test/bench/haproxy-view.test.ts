import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readHaproxyView, type HaproxyView } from '../../bench/lib/haproxy-view.ts';
import { freePort } from '../../common/influxd.ts';
import { haproxyConfig } from '../support/haproxy.ts';

/**
 * The 100,000-device benchmark's per-group log reads each HAProxy's runtime API (bench/lib/haproxy-view.ts).
 * Against Debian's HAProxy with two backends, one of which stops listening; the view must count
 * the clients on the frontend, the connects sent on from a node that died, and mark that node down.
 */
describe('HAProxy view (bench)', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanups.splice(0).reverse()) c();
  });

  it('counts frontend clients, connects redispatched from a node that died, and names the node once marked down', async () => {
    const accepted: Socket[] = [];
    const listen = async (): Promise<{ server: Server; port: number }> => {
      const server = createServer((s) => accepted.push(s));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { server, port: (server.address() as { port: number }).port };
    };
    const [a, b] = [await listen(), await listen()];
    cleanups.push(() => {
      for (const s of accepted) s.destroy();
      a.server.close();
      b.server.close();
    });
    const dir = mkdtempSync(join(tmpdir(), 'carewatch-haproxy-view-'));
    const socketPath = join(dir, 'stats.sock');
    const port = await freePort();
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(port, [{ name: 'a', port: a.port }, { name: 'b', port: b.port }], { maxconn: 100, statsSocket: socketPath }));
    const child: ChildProcess = spawn('/usr/sbin/haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: 'ignore' });
    cleanups.push(() => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    const view = (): Promise<HaproxyView | undefined> => readHaproxyView(socketPath, 2_000).catch(() => undefined);
    const until = async <T>(f: () => Promise<T | undefined>, ok: (x: T) => boolean): Promise<T> => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const x = await f();
        if (x !== undefined && ok(x)) return x;
        if (Date.now() > deadline) throw new Error(`not reached: ${JSON.stringify(x)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const clients: Socket[] = [];
    cleanups.push(() => {
      for (const c of clients) c.destroy();
    });
    const open = (n: number): void => {
      for (let i = 0; i < n; i++) clients.push(connect(port, '127.0.0.1'));
    };
    // Both nodes up (their first health checks pass): two clients, one on each.
    await until(view, (x) => x.down.length === 0);
    open(2);
    const before = await until(view, (x) => x.clients === 2);
    expect(before.connectErrors).toBe(0);

    // Node b dies (and every accepted socket is closed, a's too, so the count starts again from the
    // new clients). Until b's checks fail 3 times (inter 2 s) round robin still sends every other
    // connection to it: refused, then redispatched to a.
    b.server.close();
    for (const s of accepted.splice(0)) s.destroy();
    open(4);
    const after = await until(view, (x) => x.clients === 4 && x.redispatches >= 1);
    // Every refused attempt found a, so none failed for the client.
    expect(after.connectErrors).toBe(0);
    expect(after.queued).toBe(0);
    const down = await until(view, (x) => x.down.length > 0);
    expect(down.down).toEqual(['b']);
  }, 40_000);

  it('connects to the nodes from the source address it is given', async () => {
    // The benchmark gives each HAProxy process an address of its own (test/support/haproxy.ts sourceAddress).
    const from: string[] = [];
    const node = createServer((sock) => {
      from.push(sock.remoteAddress ?? '');
      sock.destroy();
    });
    await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
    cleanups.push(() => node.close());
    const dir = mkdtempSync(join(tmpdir(), 'carewatch-haproxy-source-'));
    const port = await freePort();
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(port, [{ name: 'n', port: (node.address() as { port: number }).port }], { sourceAddress: '127.0.1.7' }));
    const child: ChildProcess = spawn('/usr/sbin/haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: 'ignore' });
    cleanups.push(() => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    const deadline = Date.now() + 15_000;
    while (from.length < 3) {
      if (Date.now() > deadline) throw new Error('no connection reached the node');
      const c = connect(port, '127.0.0.1');
      c.on('error', () => undefined);
      cleanups.push(() => c.destroy());
      await new Promise((r) => setTimeout(r, 200));
    }
    // Health checks and proxied connections alike come from it.
    expect(new Set(from)).toEqual(new Set(['127.0.1.7']));
  }, 30_000);
});
