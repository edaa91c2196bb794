/**
 * Issue 12: "the alerts process grew from 137 to 267 MB RSS over a run of hostile HTTP requests,
 * cause unknown". This script hammers a real alerts process (a child process, started from its
 * main.ts) with hostile HTTP and samples its memory; it is a measurement, not a test (no RSS number
 * is asserted anywhere: test/hostile/bounds.test.ts asserts the sizes of the bounded structures).
 *
 *   node --import tsx test/hostile/alerts-rss.ts [seconds=60] [kind=all|login|body|json|route|query|socketio] [ENV=v,...] [idle seconds]
 *
 * Measured (2 cores, 16 clients, 60 s of all kinds): before, RSS 128 → 368 MB with the heap after GC
 * 35 → 63 MB; after (MALLOC_MMAP_THRESHOLD_=131072 and alerts/socket-handshakes.ts), 123 → 131 MB,
 * heap 35 → 39 MB. The two causes, by kind: `login` alone took RSS 127 → 404 MB in 25 s with the
 * heap unchanged (scrypt's 16 MiB blocks kept by glibc's per-thread arenas, docs/alerts.md
 * "Memory"), `socketio` alone grew the heap 35 → 64 MB in 40 s (sessions waiting for a CONNECT).
 * Add `MALLOC_MMAP_THRESHOLD_=131072` as the third argument to run with the launcher's setting.
 *
 * Every sample forces a full GC in the child over the inspector protocol (HeapProfiler.collectGarbage)
 * and reads process.memoryUsage() there, so heapUsed after GC tells retained JS objects apart from
 * native/allocator memory (rss − heapTotal − external).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { freePort } from '../../common/influxd.ts';
import { ROOT } from '../support/process.ts';
import { DEMO_SITE_PATH } from '../support/registry.ts';

const seconds = Number(process.argv[2] ?? 60);
const kind = process.argv[3] ?? 'all';
const extraEnv = Object.fromEntries((process.argv[4] ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));

const httpPort = await freePort();
const base = `http://127.0.0.1:${httpPort}`;
const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', '--import', 'tsx', join(ROOT, 'alerts/main.ts')], {
  cwd: ROOT,
  env: {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    UV_THREADPOOL_SIZE: '16',
    CAREWATCH_LOG_LEVEL: 'warn',
    CAREWATCH_REGISTRY: DEMO_SITE_PATH,
    // No broker, no InfluxDB: the HTTP side is what is measured (alerts serves after its MQTT wait).
    CAREWATCH_MQTT_URL: 'mqtt://127.0.0.1:1',
    CAREWATCH_INFLUX_URL: 'http://127.0.0.1:1',
    CAREWATCH_HTTP_PORT: String(httpPort),
    CAREWATCH_STATE_DIR: mkdtempSync(join(tmpdir(), 'carewatch-rss-')),
    ...extraEnv,
  },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let logBytes = 0;
const inspectorUrl = await new Promise<string>((resolve) => {
  child.stderr.on('data', (d: Buffer) => {
    logBytes += d.length;
    const m = /ws:\/\/[^\s]+/.exec(d.toString());
    if (m) resolve(m[0]);
  });
});
const ws = new WebSocket(inspectorUrl);
await new Promise((r) => ws.once('open', r));
let nextId = 1;
const pending = new Map<number, (v: unknown) => void>();
ws.on('message', (d: Buffer) => {
  const msg = JSON.parse(d.toString()) as { id?: number; result?: unknown };
  if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
});
function cdp(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
  const id = nextId++;
  return new Promise((r) => {
    pending.set(id, r);
    ws.send(JSON.stringify({ id, method, params }));
  });
}
await cdp('Runtime.runIfWaitingForDebugger');

for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).status > 0) break;
  } catch {
    /* not up yet */
  }
  await new Promise((r) => setTimeout(r, 200));
}

interface Mem {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}
async function memory(): Promise<Mem> {
  await cdp('HeapProfiler.collectGarbage');
  const r = (await cdp('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
  return JSON.parse(r.result.value) as Mem;
}
const mb = (n: number): string => (n / 1048576).toFixed(1);
const show = (label: string, m: Mem): void => {
  console.log(`${label.padEnd(10)} rss ${mb(m.rss)} MB  heapUsed ${mb(m.heapUsed)}  heapTotal ${mb(m.heapTotal)}  external ${mb(m.external)}  native≈${mb(m.rss - m.heapTotal - m.external)}`);
};

let seed = 12345;
const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const rstr = (n: number): string => Array.from({ length: n }, () => String.fromCharCode(33 + Math.floor(rnd() * 90))).join('');

const counts = new Map<string, number>();
const attacks: Record<string, () => Promise<Response>> = {
  login: () => fetch(`${base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: rnd() < 0.3 ? 'staff-h01' : `u${rstr(40)}`, password: rstr(30) }) }),
  body: () => fetch(`${base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"username":"${'x'.repeat(200_000)}"}` }),
  json: () => fetch(`${base}/api/alerts/${encodeURIComponent(rstr(10))}/ack`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${rstr(60)}` }, body: `{"comment":${rstr(20)}` }),
  route: () => fetch(`${base}/${rstr(30).replace(/[?#%]/g, 'a')}/${rstr(12).replace(/[?#%]/g, 'b')}`),
  query: () => fetch(`${base}/api/history?${rstr(8).replace(/[#&=]/g, 'q')}=${encodeURIComponent(rstr(200))}&resident=${encodeURIComponent(rstr(10))}&range=${rstr(4)}`),
  socketio: () => fetch(`${base}/socket.io/?EIO=4&transport=polling&t=${rstr(6).replace(/[#&]/g, 'z')}`, rnd() < 0.5 ? {} : { method: 'POST', body: rstr(100) }),
};
const chosen = kind === 'all' ? Object.keys(attacks) : [kind];

show('start', await memory());
const until = Date.now() + seconds * 1000;
let sent = 0;
const CONCURRENCY = 16;
const worker = async (): Promise<void> => {
  while (Date.now() < until) {
    const k = chosen[Math.floor(rnd() * chosen.length)] ?? 'route';
    try {
      const res = await attacks[k]!();
      await res.arrayBuffer();
      const key = `${k} ${res.status}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch (err) {
      const key = `${k} error ${(err as Error).message}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    sent++;
  }
};
const sampler = setInterval(() => {
  void memory().then((m) => show(`${Math.round((seconds * 1000 - (until - Date.now())) / 1000)} s`, m));
}, Math.max(5000, (seconds * 1000) / 6));
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
clearInterval(sampler);
show('end', await memory());
const idle = Number(process.argv[5] ?? 0);
if (idle > 0) {
  await new Promise((r) => setTimeout(r, idle * 1000));
  show(`idle ${idle} s`, await memory());
}
console.log(`requests ${sent}; stderr log ${logBytes} bytes; replies:`);
for (const [k, n] of [...counts].sort()) console.log(`  ${k}: ${n}`);
ws.close();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
