/**
 * The load generator: a separate child process (so its CPU is not the system under test's) that
 * holds many device connections and, optionally, one subscriber, driven over IPC by bench/lib/loadgen.ts.
 * Every wait here is bounded by a deadline; the process exits when its parent goes away.
 */
import { deviceTopic } from '../../contract/topics.ts';
import { RawClient } from './mqtt-raw.ts';
import { seqOf, smokeTelemetry } from './payload.ts';
import { SampleBuffer, percentiles } from './stats.ts';
import { rssBytes } from './proc.ts';
import { io, type Socket } from 'socket.io-client';
import type { ConnectResult, DeviceRef, LoadgenCommand, LoadgenReply, ReconnectReport, RunResult, StatsResult, TriggerResult } from './loadgen-protocol.ts';
import { sleep } from './sleep.ts';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const MASK = (1 << 22) - 1;
const sendTimes = new Float64Array(MASK + 1);
let nextSeq = 1;

interface Dev {
  readonly ref: DeviceRef;
  readonly topic: Buffer;
  client: RawClient | undefined;
  connected: boolean;
  /** Failed attempts in a row (the back-off exponent). */
  failures: number;
  /** Got a CONNACK since the last resetReconnects. */
  reconnected: boolean;
  /** This device's own share of the keepalive (0–¼ of it) added before it pings: see the pinger. */
  readonly pingJitter: number;
  /** When the attempt waiting for its CONNACK started (performance.now()); undefined when none is. */
  attemptStartedAt: number | undefined;
  /** A reconnect back-off timer is pending. */
  backingOff: boolean;
}

/** Reconnect timings since the last resetReconnects (the restart measurement). */
const rc = { attempts: 0, failed: 0, lastConnack: Number.NaN, latencies: [] as number[], firstError: undefined as string | undefined, kinds: {} as Record<string, number> };
/** A failure's kind: its errno code, else its message without numbers (ports, ms). */
function failureKind(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : String((err as Error).message).replace(/[0-9.:]+/g, '#').slice(0, 60);
}
/** Since start, for the stats command: connections ended after CONNACK. */
let dropped = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const WILL = Buffer.from(JSON.stringify({ online: false }));

const devices: Dev[] = [];
const byId = new Map<string, Dev>();
let stopRequested = false;

interface Dash {
  readonly username: string;
  /** undefined for bureau/admin users (they see every home's fire alerts). */
  readonly homeId: string | undefined;
  readonly socket: Socket;
}
const dashboards: Dash[] = [];
/** deviceId → waiters for a raised alert of that device. */
/** The timing fields of an alert (contract AlertMessage, platform clock ms) that break its latency down. */
interface AlertTiming {
  readonly deviceId?: string;
  readonly state?: string;
  readonly rule?: string;
  readonly brokerTs?: number;
  readonly receivedTs?: number;
  readonly raisedAt?: number;
}
const alertWaiters = new Map<string, Array<(dash: Dash, at: number, alert: AlertTiming, atEpoch: number, bySnapshot: boolean) => void>>();
let pageReconnects = 0;
let subscriber: RawClient | undefined;
let reconnectEnabled = false;
let shuttingDown = false;
let reconnects = 0;
let connectOpts: Extract<LoadgenCommand, { op: 'connect' }> | undefined;

// Delivery accounting for the current run.
let delivered = 0;
let windowSeqStart = Number.MAX_SAFE_INTEGER;
let windowSeqEnd = Number.MAX_SAFE_INTEGER;
let windowOpen = false;
let deliveredInWindowTime = 0;
const latencies = new SampleBuffer();

function onDelivery(_topic: string, payload: Buffer): void {
  const seq = seqOf(payload);
  if (seq < 0) return;
  const t = sendTimes[seq & MASK] as number;
  if (t === 0) return; // duplicate or from an earlier run
  sendTimes[seq & MASK] = 0;
  delivered++;
  if (windowOpen) deliveredInWindowTime++;
  if (seq >= windowSeqStart && seq < windowSeqEnd) latencies.push(performance.now() - t);
}

function connectedCount(): number {
  let n = 0;
  for (const d of devices) if (d.connected) n++;
  return n;
}

async function connectOne(d: Dev, idx: number, c: Extract<LoadgenCommand, { op: 'connect' }>): Promise<void> {
  const statusTopic = c.deviceSession === true ? deviceTopic(d.ref.homeId, d.ref.id, 'status') : undefined;
  const client = new RawClient({
    host: c.host,
    port: c.port,
    localAddress: c.localAddresses.length > 0 ? c.localAddresses[idx % c.localAddresses.length] : undefined,
    clientId: d.ref.id,
    username: d.ref.id,
    password: d.ref.secret ?? c.secret,
    keepaliveS: c.keepaliveS,
    connectTimeoutMs: c.connackTimeoutMs ?? c.timeoutMs,
    ...(statusTopic !== undefined ? { will: { topic: statusTopic, payload: WILL, qos: 1 as const, retain: true } } : {}),
  });
  // A device's PUBACKs count across its reconnects (a run sums them per device at its end).
  if (d.client !== undefined) client.acked = d.client.acked;
  d.client = client;
  client.onClose = () => {
    const was = d.connected;
    d.connected = false;
    if (was) dropped++;
    if (was && reconnectEnabled && !shuttingDown) scheduleReconnect(d, idx);
  };
  const started = performance.now();
  rc.attempts++;
  d.attemptStartedAt = started;
  try {
    await client.connect();
  } catch (err) {
    rc.failed++;
    rc.firstError ??= (err as Error).message;
    const kind = failureKind(err);
    rc.kinds[kind] = (rc.kinds[kind] ?? 0) + 1;
    throw err;
  } finally {
    d.attemptStartedAt = undefined;
  }
  const at = performance.now();
  d.connected = true;
  d.failures = 0;
  if (!d.reconnected) {
    d.reconnected = true;
    rc.latencies.push(at - started);
    rc.lastConnack = performance.timeOrigin + at;
  }
  // As a carewatch device does after CONNACK (device-sim/device.ts): its online status, retained.
  // Retained, as the contract says (it was sent without the flag until session 10, so the reconnect
  // benchmark left out the retained store and its durable commit per device).
  if (statusTopic !== undefined) client.publish(Buffer.from(statusTopic), Buffer.from(JSON.stringify({ ts: Date.now(), online: true, firmware: 'bench-1' })), 1, true);
}

function scheduleReconnect(d: Dev, idx: number): void {
  const c = connectOpts;
  if (c === undefined) return;
  // Jittered back-off as real devices do, so they do not all hit the restarted broker at once.
  const b = c.backoff;
  const delay = b === undefined ? 200 + Math.random() * 1800 : Math.random() * (d.failures === 0 ? b.initialMaxMs : Math.min(b.capMs, b.baseMs * 2 ** (d.failures - 1)));
  d.backingOff = true;
  setTimeout(() => {
    d.backingOff = false;
    if (shuttingDown || d.connected) return;
    reconnects++;
    connectOne(d, idx, c).catch(() => {
      d.failures++;
      scheduleReconnect(d, idx);
    });
  }, delay);
}

async function doConnect(c: Extract<LoadgenCommand, { op: 'connect' }>): Promise<ConnectResult> {
  connectOpts = c;
  reconnectEnabled = c.reconnect;
  const start = performance.now();
  const base = devices.length;
  for (const ref of c.devices) {
    const d: Dev = { ref, topic: Buffer.from(deviceTopic(ref.homeId, ref.id, 'telemetry')), client: undefined, connected: false, failures: 0, reconnected: false, pingJitter: Math.random() / 4, attemptStartedAt: undefined, backingOff: false };
    devices.push(d);
    byId.set(ref.id, d);
  }
  let next = base;
  let failed = 0;
  let firstError: string | undefined;
  const deadline = Date.now() + c.timeoutMs;
  const worker = async (): Promise<void> => {
    while (next < devices.length && Date.now() < deadline) {
      const idx = next++;
      const d = devices[idx] as Dev;
      try {
        await connectOne(d, idx, c);
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
        d.failures++;
        if (reconnectEnabled) scheduleReconnect(d, idx);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, worker));
  return { connected: connectedCount(), failed, ms: performance.now() - start, ...(firstError !== undefined ? { firstError } : {}) };
}

async function doSubscriber(c: Extract<LoadgenCommand, { op: 'subscriber' }>): Promise<{ ok: true }> {
  const client = new RawClient({ host: c.host, port: c.port, clientId: c.clientId, username: c.username, password: c.password, keepaliveS: 60, clean: c.clean ?? true });
  await client.connect();
  client.onMessage = onDelivery;
  await client.subscribe(c.filter, c.qos);
  subscriber = client;
  return { ok: true };
}

async function doRun(c: Extract<LoadgenCommand, { op: 'run' }>): Promise<RunResult> {
  const live = devices.filter((d) => d.connected && d.client !== undefined);
  if (live.length === 0) throw new Error('no connected devices');
  delivered = 0;
  deliveredInWindowTime = 0;
  latencies.clear();
  windowSeqStart = Number.MAX_SAFE_INTEGER;
  windowSeqEnd = Number.MAX_SAFE_INTEGER;
  windowOpen = false;
  for (const d of live) d.client!.acked = 0;
  const start = performance.now();
  const windowStart = start + c.warmupMs;
  const end = windowStart + c.durationMs;
  let sent = 0;
  let sentInWindow = 0;
  let rr = 0;
  let behindTicks = 0;
  const sendOne = (d: Dev): boolean => {
    const seq = nextSeq++;
    sendTimes[seq & MASK] = performance.now();
    sent++;
    if (windowOpen) sentInWindow++;
    return d.client!.publish(d.topic, smokeTelemetry(seq, Date.now()), c.qos);
  };
  // Closed loop in saturation: at most `window` per publisher in flight end to end, so the broker's
  // queues (and latency) stay bounded and the delivered rate is its capacity, not its buffering.
  const e2eCap = c.expectDeliveries && c.rate === 0 ? live.length * c.window : Number.MAX_SAFE_INTEGER;
  const canSend = (d: Dev): boolean => {
    const cl = d.client!;
    if (sent - delivered >= e2eCap) return false;
    if (!d.connected || cl.closed) return false;
    if (c.qos === 1) return cl.inflight < c.window;
    return (cl.socket?.writableLength ?? 0) < 256 * 1024;
  };
  const maxPerTick = c.rate > 0 ? Math.max(1, Math.ceil(c.rate / 20)) : Number.MAX_SAFE_INTEGER;
  stopRequested = false;
  while (true) {
    const now = performance.now();
    if (now >= end || stopRequested) break;
    if (!windowOpen && now >= windowStart) {
      windowOpen = true;
      windowSeqStart = nextSeq;
    }
    if (c.rate > 0) {
      let due = Math.min(maxPerTick, Math.floor((c.rate * (now - start)) / 1000) - sent);
      let skipped = 0;
      while (due > 0 && skipped < live.length) {
        const d = live[rr++ % live.length] as Dev;
        if (!canSend(d)) {
          skipped++;
          continue;
        }
        sendOne(d);
        due--;
        skipped = 0;
      }
      if (due > 0) behindTicks++;
    } else {
      let budget = 20_000; // per tick, so receipts and acks get the event loop too
      for (let k = 0; k < live.length && budget > 0; k++) {
        const d = live[rr++ % live.length] as Dev;
        let n = 0;
        while (n < c.window && budget > 0 && canSend(d)) {
          sendOne(d);
          n++;
          budget--;
        }
      }
    }
    await new Promise<void>((r) => setImmediate(r));
    if (c.rate > 0) await sleep(1);
  }
  windowOpen = false;
  windowSeqEnd = nextSeq;
  const windowSeconds = (performance.now() - windowStart) / 1000;
  const deliveredRate = deliveredInWindowTime / windowSeconds;
  const drainDeadline = performance.now() + c.drainMs;
  while (performance.now() < drainDeadline) {
    const pendingAcks = c.qos === 1 ? live.reduce((s, d) => s + (d.client?.inflight ?? 0), 0) : 0;
    const pendingDeliveries = c.expectDeliveries ? sent - delivered : 0;
    if (pendingAcks <= 0 && pendingDeliveries <= 0) break;
    await sleep(20);
  }
  let missing = 0;
  if (c.expectDeliveries) for (let s = windowSeqStart; s < windowSeqEnd; s++) if ((sendTimes[s & MASK] as number) !== 0) missing++;
  const acked = live.reduce((s, d) => s + (d.client?.acked ?? 0), 0);
  return {
    sent,
    sentInWindow,
    sendRate: sentInWindow / windowSeconds,
    acked,
    delivered,
    deliveredInWindow: deliveredInWindowTime,
    deliveredRate,
    missing,
    latencyMs: percentiles(latencies.values()),
    behindTicks,
  };
}

async function doDashboards(c: Extract<LoadgenCommand, { op: 'dashboards' }>): Promise<{ connected: number }> {
  const deadline = Date.now() + c.timeoutMs;
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < c.users.length && Date.now() < deadline) {
      const u = c.users[i++] as { username: string; password: string };
      const res = await fetch(`${c.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(u) });
      if (!res.ok) throw new Error(`login ${u.username}: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { token: string; user: { homeId?: string } };
      // Reconnecting as the page does (socket.io's back-off, 1–5 s): a server that stalled past its
      // ping timeout ends every connection, and the page gets what it missed in its snapshot.
      const socket = io(c.url, { auth: { token: body.token }, transports: ['websocket'], reconnection: true, timeout: c.timeoutMs });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', (e) => reject(new Error(`socket.io ${u.username}: ${e.message}`)));
      });
      const dash: Dash = { username: u.username, homeId: body.user.homeId, socket };
      socket.io.on('reconnect', () => {
        pageReconnects++;
      });
      socket.on('alert', (a: AlertTiming) => {
        const at = performance.now();
        const atEpoch = Date.now();
        if (a.state !== 'raised' || a.deviceId === undefined) return;
        for (const w of alertWaiters.get(a.deviceId) ?? []) w(dash, at, a, atEpoch, false);
      });
      socket.on('snapshot', (alerts: AlertTiming[]) => {
        const at = performance.now();
        const atEpoch = Date.now();
        for (const a of alerts) {
          if (a.deviceId === undefined || a.state === 'resolved') continue;
          for (const w of alertWaiters.get(a.deviceId) ?? []) w(dash, at, a, atEpoch, true);
        }
      });
      dashboards.push(dash);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { connected: dashboards.length };
}

let triggerSeq = 1;
async function doTrigger(c: Extract<LoadgenCommand, { op: 'trigger' }>): Promise<TriggerResult> {
  const d = byId.get(c.deviceId);
  if (d === undefined || !d.connected || d.client === undefined) throw new Error(`device ${c.deviceId} is not connected`);
  const receivers = dashboards.filter((x) => x.homeId === c.homeId || (c.bureauToo && x.homeId === undefined));
  const expected = new Set(receivers);
  const seen = new Set<Dash>();
  const latenciesMs: number[] = [];
  let rule: string | undefined;
  let stages: TriggerResult['stages'];
  let bySnapshot = 0;
  const sentAt = performance.now();
  const sentEpoch = Date.now();
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, c.timeoutMs);
    const w = (dash: Dash, at: number, a: AlertTiming, atEpoch: number, viaSnapshot: boolean): void => {
      // Only the expected receivers count: a fire the rule escalates at once also reaches bureau
      // clients, which would make more receipts than expected (a negative "missing").
      if (seen.has(dash) || !expected.has(dash)) return;
      // A snapshot lists every open alert: one of this device's raised before this trial (a monitor
      // whose earlier alarm is not resolved yet) is not this trial's receipt.
      if (viaSnapshot && (a.raisedAt === undefined || a.raisedAt < sentEpoch)) return;
      seen.add(dash);
      if (viaSnapshot) bySnapshot++;
      rule ??= a.rule ?? '';
      latenciesMs.push(at - sentAt);
      // Where the first receipt's time went, from the alert's own stamps (one clock, ms resolution).
      if (stages === undefined && a.brokerTs !== undefined && a.receivedTs !== undefined && a.raisedAt !== undefined) {
        stages = { toBroker: a.brokerTs - sentEpoch, brokerToAlerts: a.receivedTs - a.brokerTs, toRaised: a.raisedAt - a.receivedTs, toClient: atEpoch - a.raisedAt };
      }
      if (seen.size >= receivers.length) {
        clearTimeout(timer);
        resolve();
      }
    };
    alertWaiters.set(c.deviceId, [w]);
  });
  const payload = Buffer.from(JSON.stringify({ ts: Date.now(), seq: 1_000_000_000 + triggerSeq++, ...c.body }));
  d.client.publish(Buffer.from(deviceTopic(c.homeId, c.deviceId, c.channel)), payload, 1);
  await done;
  alertWaiters.delete(c.deviceId);
  return { latenciesMs, expected: receivers.length, bySnapshot, ...(rule !== undefined ? { rule } : {}), ...(stages !== undefined ? { stages } : {}) };
}

async function waitConnected(count: number, timeoutMs: number): Promise<{ connected: number; ms: number }> {
  const start = performance.now();
  const deadline = start + timeoutMs;
  while (performance.now() < deadline && connectedCount() < count) await sleep(50);
  return { connected: connectedCount(), ms: performance.now() - start };
}

function disconnectAll(): void {
  shuttingDown = true;
  for (const d of devices) d.client?.destroy();
  subscriber?.destroy();
  for (const x of dashboards) x.socket.disconnect();
}

// Keepalive: any packet resets the broker's timer [MQTT-3.1.2-23]; a device idle for half of it
// (plus its own jitter, up to a quarter more) pings. Without the jitter every idle device pinged in
// the same 5 s tick: devices connected together stay in step, and 2,000 PINGREQs in one burst held
// the broker for tens of ms, which an alarm published right then waited out (session 6's one idle
// fire receipt of 33.5 ms, 29 ms of it before the broker read the PUBLISH). Real devices report on
// timers of their own and drift apart; a generator that pings in lockstep measures itself.
const pinger = setInterval(() => {
  const keepaliveMs = (connectOpts?.keepaliveS ?? 60) * 1000;
  const now = Date.now();
  for (const d of devices) if (d.connected && d.client && now - d.client.lastSendAt > keepaliveMs * (0.5 + d.pingJitter)) d.client.ping();
  if (subscriber && now - subscriber.lastSendAt > 30_000) subscriber.ping();
}, 250);

async function handle(cmd: LoadgenCommand): Promise<unknown> {
  switch (cmd.op) {
    case 'connect':
      return doConnect(cmd);
    case 'subscriber':
      return doSubscriber(cmd);
    case 'run':
      return doRun(cmd);
    case 'stopRun':
      stopRequested = true;
      return { ok: true };
    case 'dashboards':
      return doDashboards(cmd);
    case 'trigger':
      return doTrigger(cmd);
    case 'waitConnected':
      return waitConnected(cmd.count, cmd.timeoutMs);
    case 'stats': {
      const now = performance.now();
      let connecting = 0;
      let oldest = 0;
      let backingOff = 0;
      for (const d of devices) {
        if (d.attemptStartedAt !== undefined) {
          connecting++;
          oldest = Math.max(oldest, now - d.attemptStartedAt);
        }
        if (d.backingOff) backingOff++;
      }
      // The histogram is in ns; reset so each call covers the time since the previous one.
      const delayMaxMs = loopDelay.max / 1e6;
      loopDelay.reset();
      return {
        connected: connectedCount(),
        reconnects,
        pageReconnects,
        rssBytes: rssBytes(process.pid),
        connecting,
        oldestAttemptMs: Math.round(oldest),
        backingOff,
        dropped,
        loopDelayMaxMs: Math.round(delayMaxMs),
      } satisfies StatsResult;
    }
    case 'resetReconnects':
      Object.assign(rc, { attempts: 0, failed: 0, lastConnack: Number.NaN, latencies: [], firstError: undefined, kinds: {} });
      for (const d of devices) d.reconnected = false;
      return { ok: true };
    case 'reconnectReport': {
      let reconnected = 0;
      for (const d of devices) if (d.reconnected) reconnected++;
      return { connected: connectedCount(), reconnected, lastConnackEpochMs: rc.lastConnack, connectLatenciesMs: rc.latencies, attempts: rc.attempts, failedAttempts: rc.failed, failuresByKind: rc.kinds, ...(rc.firstError !== undefined ? { firstError: rc.firstError } : {}) } satisfies ReconnectReport;
    }
    case 'disconnect':
      disconnectAll();
      return { ok: true };
    case 'exit':
      disconnectAll();
      clearInterval(pinger);
      loopDelay.disable();
      setTimeout(() => process.exit(0), 50);
      return { ok: true };
  }
}

process.on('message', (msg: { id: number; cmd: LoadgenCommand }) => {
  handle(msg.cmd).then(
    (result) => process.send?.({ id: msg.id, reply: { ok: true, result } satisfies LoadgenReply }),
    (err: unknown) => process.send?.({ id: msg.id, reply: { ok: false, error: err instanceof Error ? err.message : String(err) } satisfies LoadgenReply }),
  );
});
// The runner owns this process: if it goes away, so do we.
process.on('disconnect', () => {
  disconnectAll();
  process.exit(0);
});
process.send?.({ id: 0, reply: { ok: true, result: 'ready' } });
