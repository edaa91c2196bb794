import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import mqtt from 'mqtt';
import { generate, parser as createParser, type Packet } from 'mqtt-packet';
import { freePort } from '../../common/influxd.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { parseExposition, type Exposition } from '../metrics/exposition.ts';
import { eventually, startProcess, type TestProcess } from '../support/process.ts';
import { DEMO_SITE_PATH, demoRegistry, demoSecret } from '../support/registry.ts';
import { mutatedPayload, validDeviceMessage } from './arbitraries.ts';

/**
 * The fuzz run of issue 12 over the real broker and ingest, as child processes started from their
 * main.ts: one authenticated device sends random and mutated payloads (test/hostile/arbitraries.ts,
 * seeded) plus fixed hostile cases (10k-deep JSON, 1 MB bodies, 1e309, wildcard and foreign topics)
 * over a raw MQTT 3.1.1 connection (mqtt.js refuses wildcard topics before they leave the client),
 * each at QoS 1, reconnecting whenever the broker closes the connection. Then a valid reading from
 * another device must still be stored, both processes must still be up, and every rejection is
 * read back, by reason, from the broker's and ingest's /metrics.
 *
 * Used by test/hostile/fuzz.test.ts (short, in npm test) and by `npm run fuzz -- <count> <seed>`
 * (test/hostile/fuzz-main.ts, longer, outside it).
 */
export interface FuzzOptions {
  readonly influxUrl: string;
  readonly database: string;
  readonly count: number;
  readonly seed: number;
  readonly log?: (line: string) => void;
}

export interface FuzzResult {
  readonly sent: number;
  /** Outcome of each PUBLISH: PUBACKed, connection closed by the broker, no answer in time. */
  readonly outcomes: Readonly<Record<'acked' | 'closed' | 'timeout', number>>;
  /** By how the payload was made (arbitraries.ts `how`, or the fixed case's name). */
  readonly byHow: Readonly<Record<string, Record<string, number>>>;
  readonly brokerRejected: Readonly<Record<string, number>>;
  readonly ingestRejected: Readonly<Record<string, number>>;
  readonly ingestReceived: number;
  readonly brokerReceived: number;
  /** The valid reading of another device sent after the fuzz was stored. */
  readonly validStored: boolean;
  readonly brokerAlive: boolean;
  readonly ingestAlive: boolean;
}

const FUZZ_DEVICE = 'h01-sd-f1-corridor';
const OTHER_DEVICE = 'h02-sd-f1-corridor';

interface Case {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly how: string;
}

/** Fixed hostile cases, always sent (the random ones come on top). */
function fixedCases(now: number): Case[] {
  const t = deviceTopic('h01', FUZZ_DEVICE, 'telemetry');
  const deep = (n: number): string => `{"ts":${now},"seq":1,"metrics":{"temperature_c":${'['.repeat(n)}${']'.repeat(n)}}}`;
  const s = (topic: string, text: string | Uint8Array, how: string): Case => ({ topic, payload: typeof text === 'string' ? Buffer.from(text) : text, how });
  return [
    s(t, deep(10_000), 'fixed:deep-10k'),
    s(t, deep(2_000), 'fixed:deep-2k-in-bound'),
    s(t, Buffer.alloc(1 << 20, 0x20), 'fixed:1MB'),
    s(t, Buffer.alloc(32 * 1024, 0x20), 'fixed:32KB'),
    s(t, `{"ts":${now},"seq":1,"metrics":{"temperature_c":1e309}}`, 'fixed:1e309'),
    s(t, `{"ts":${now},"seq":2,"metrics":{"temperature_c":-0}}`, 'fixed:-0'),
    s(t, `{"ts":${now},"seq":3,"metrics":{"temperature_c":"NaN"}}`, 'fixed:NaN-string'),
    s(t, `{"ts":"${now}","seq":4,"metrics":{"temperature_c":20}}`, 'fixed:wrong-type'),
    s(t, `{"ts":${now},"seq":5,"metrics":{"temperature_c":20},"admin":true}`, 'fixed:extra-field'),
    s(t, Buffer.from([0x7b, 0xff, 0xfe, 0xc0, 0x80, 0x7d]), 'fixed:invalid-utf8'),
    s(t, `{"ts":1,"seq":6,"metrics":{"temperature_c":20}}`, 'fixed:1970'),
    s('carewatch/v1/h01/+/telemetry', `{"ts":${now},"seq":7,"metrics":{"temperature_c":20}}`, 'fixed:wildcard+'),
    s('carewatch/v1/#', '{}', 'fixed:wildcard#'),
    s(`carewatch/v1/h01/${OTHER_DEVICE}/telemetry`, `{"ts":${now},"seq":8,"metrics":{"temperature_c":20}}`, 'fixed:other-device'),
    s(`carewatch/v1/h02/${FUZZ_DEVICE}/telemetry`, `{"ts":${now},"seq":9,"metrics":{"temperature_c":20}}`, 'fixed:other-home'),
    s('carewatch/v1/h01/h01-sd-f1-cörridor/telemetry', '{}', 'fixed:unicode-topic'),
    s('carewatch/v1/h01/alerts', '{}', 'fixed:alerts-topic'),
    s(deviceTopic('h01', FUZZ_DEVICE, 'command'), '{}', 'fixed:command-topic'),
  ];
}

/** A raw MQTT 3.1.1 client session: CONNECT, then PUBLISH QoS 1 packets one at a time. */
class RawDevice {
  #socket: Socket | undefined;
  #waiting: ((outcome: 'acked' | 'closed') => void) | undefined;
  #waitingId = 0;
  #nextId = 1;
  constructor(
    readonly port: number,
    readonly username: string,
    readonly password: string,
  ) {}

  async #connect(): Promise<Socket> {
    const socket = connect({ host: '127.0.0.1', port: this.port });
    const parser = createParser({ protocolVersion: 4 });
    let connack: ((ok: boolean) => void) | undefined;
    const connected = new Promise<boolean>((r) => (connack = r));
    parser.on('packet', (p: Packet) => {
      if (p.cmd === 'connack') connack?.(p.returnCode === 0);
      if (p.cmd === 'puback' && p.messageId === this.#waitingId) this.#settle('acked');
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (d: Buffer) => parser.parse(d));
    const gone = (): void => {
      if (this.#socket === socket) this.#socket = undefined;
      connack?.(false);
      this.#settle('closed');
    };
    socket.on('close', gone);
    socket.on('error', () => undefined);
    socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: this.username, username: this.username, password: Buffer.from(this.password), keepalive: 60 }));
    if (!(await connected)) throw new Error(`${this.username}: CONNECT refused`);
    this.#socket = socket;
    return socket;
  }

  #settle(outcome: 'acked' | 'closed'): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.(outcome);
  }

  async publish(topic: string, payload: Uint8Array, timeoutMs = 5000): Promise<'acked' | 'closed' | 'timeout'> {
    const socket = this.#socket ?? (await this.#connect());
    const messageId = this.#nextId;
    this.#nextId = (this.#nextId % 65535) + 1;
    this.#waitingId = messageId;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await new Promise<'acked' | 'closed' | 'timeout'>((resolve) => {
      this.#waiting = resolve;
      timer = setTimeout(() => {
        this.#waiting = undefined;
        resolve('timeout');
      }, timeoutMs);
      socket.write(generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId, retain: false, dup: false }));
    });
    clearTimeout(timer);
    if (outcome === 'timeout') {
      // Start over on a fresh connection: whatever the broker does with this one is its business.
      socket.destroy();
      this.#socket = undefined;
    }
    return outcome;
  }

  close(): void {
    this.#socket?.end(generate({ cmd: 'disconnect' }));
    this.#socket = undefined;
  }
}

function byCode(e: Exposition, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of e.samples) if (s.name === name && s.value > 0) out[s.labels.code ?? '?'] = s.value;
  return out;
}

async function scrape(url: string): Promise<Exposition> {
  const res = await fetch(url);
  return parseExposition(await res.text());
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const log = opts.log ?? ((): void => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'carewatch-fuzz-'));
  const [mqttPort, wsPort, brokerHttp, ingestHttp] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const common = { CAREWATCH_REGISTRY: DEMO_SITE_PATH, CAREWATCH_MQTT_URL: `mqtt://127.0.0.1:${mqttPort}`, CAREWATCH_INFLUX_URL: opts.influxUrl, CAREWATCH_INFLUX_DB: opts.database, CAREWATCH_LOG_LEVEL: process.env.CAREWATCH_FUZZ_LOG_LEVEL ?? 'warn' };
  const procs: TestProcess[] = [];
  try {
    const broker = startProcess('fuzz-broker', 'broker/main.ts', {
      ...common,
      CAREWATCH_BROKER_PORT: String(mqttPort),
      CAREWATCH_BROKER_WS_PORT: String(wsPort),
      CAREWATCH_BROKER_HTTP_PORT: String(brokerHttp),
      CAREWATCH_BROKER_STORE_DIR: join(dir, 'broker'),
    });
    procs.push(broker);
    await broker.waitForOutput(/broker listening/);
    const ingest = startProcess('fuzz-ingest', 'ingest/main.ts', { ...common, CAREWATCH_INGEST_PASSWORD: demoSecret('svc-ingest'), CAREWATCH_SPOOL_DIR: join(dir, 'spool'), CAREWATCH_INGEST_HTTP_PORT: String(ingestHttp) });
    procs.push(ingest);
    const brokerMetrics = `http://127.0.0.1:${brokerHttp}/metrics`;
    const ingestMetrics = `http://127.0.0.1:${ingestHttp}/metrics`;
    await eventually('ingest /healthz', async () => ((await fetch(`http://127.0.0.1:${ingestHttp}/healthz`)).ok ? true : undefined));
    await eventually('ingest subscribed', async () => ((await scrape(brokerMetrics)).value('carewatch_broker_clients_connected') >= 1 ? true : undefined));

    const now = Date.now();
    const registry = demoRegistry();
    const fuzzDevice = registry.site.devices.filter((d) => d.id === FUZZ_DEVICE);
    const random = fc.sample(
      validDeviceMessage(registry, now, fuzzDevice).chain((m) => fc.oneof({ weight: 1, arbitrary: fc.constant({ topic: m.topic, payload: Buffer.from(JSON.stringify(m.body)) as Uint8Array, how: 'valid' }) }, { weight: 6, arbitrary: mutatedPayload(m) })),
      { seed: opts.seed, numRuns: opts.count },
    );
    const cases = [...fixedCases(now), ...random];
    const device = new RawDevice(mqttPort, FUZZ_DEVICE, demoSecret(FUZZ_DEVICE));
    const outcomes = { acked: 0, closed: 0, timeout: 0 };
    const byHow: Record<string, Record<string, number>> = {};
    for (const [i, c] of cases.entries()) {
      const outcome = await device.publish(c.topic, c.payload);
      outcomes[outcome]++;
      const how = c.how.startsWith('fixed') ? c.how : c.how.replace(/:.*$/, '');
      byHow[how] ??= {};
      byHow[how][outcome] = (byHow[how][outcome] ?? 0) + 1;
      if (i % 200 === 199) log(`${i + 1}/${cases.length} sent: ${JSON.stringify(outcomes)}`);
    }
    device.close();

    // A valid reading from another device still gets through and is stored.
    const other = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: OTHER_DEVICE, username: OTHER_DEVICE, password: demoSecret(OTHER_DEVICE), protocolVersion: 4, reconnectPeriod: 0 });
    const marker = 123.25;
    await other.publishAsync(deviceTopic('h02', OTHER_DEVICE, 'telemetry'), JSON.stringify({ ts: Date.now(), seq: 1, metrics: { temperature_c: marker } }), { qos: 1 });
    await other.endAsync();
    const validStored = await eventually(
      'the other device reading stored',
      async () => {
        const q = `SELECT temperature_c FROM "raw"."telemetry" WHERE device='${OTHER_DEVICE}'`;
        const res = await fetch(`${opts.influxUrl}/query?db=${opts.database}&q=${encodeURIComponent(q)}`);
        const body = (await res.json()) as { results?: Array<{ series?: Array<{ values: unknown[][] }> }> };
        return body.results?.[0]?.series?.[0]?.values.some((v) => v[1] === marker) ? true : undefined;
      },
      60_000,
    );
    // Everything the broker acknowledged has reached ingest and been written or counted as rejected.
    const acked = outcomes.acked + 1;
    const drained = await eventually(
      'ingest drained',
      async () => {
        const e = await scrape(ingestMetrics);
        return e.value('carewatch_messages_received_total') >= acked && e.value('carewatch_ingest_spool_bytes') === 0 ? e : undefined;
      },
      60_000,
    );
    const brokerExp = await scrape(brokerMetrics);
    const result: FuzzResult = {
      sent: cases.length,
      outcomes,
      byHow,
      brokerRejected: byCode(brokerExp, 'carewatch_messages_rejected_total'),
      ingestRejected: byCode(drained, 'carewatch_messages_rejected_total'),
      ingestReceived: drained.value('carewatch_messages_received_total'),
      brokerReceived: brokerExp.value('carewatch_messages_received_total'),
      validStored,
      brokerAlive: broker.child.exitCode === null && broker.child.signalCode === null && (await fetch(`http://127.0.0.1:${brokerHttp}/healthz`)).ok,
      ingestAlive: ingest.child.exitCode === null && ingest.child.signalCode === null && (await fetch(`http://127.0.0.1:${ingestHttp}/healthz`)).ok,
    };
    return result;
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatFuzz(r: FuzzResult, seed: number): string {
  const lines = [
    `fuzz seed ${seed}: ${r.sent} publishes: ${r.outcomes.acked} acknowledged, ${r.outcomes.closed} refused by closing the connection, ${r.outcomes.timeout} unanswered`,
    `  broker received ${r.brokerReceived}; rejected by reason: ${JSON.stringify(r.brokerRejected)}`,
    `  ingest received ${r.ingestReceived}; rejected by reason: ${JSON.stringify(r.ingestRejected)}`,
    `  other device's valid reading stored: ${r.validStored}; broker up: ${r.brokerAlive}; ingest up: ${r.ingestAlive}`,
    '  by payload kind:',
    ...Object.entries(r.byHow)
      .sort()
      .map(([how, o]) => `    ${how}: ${JSON.stringify(o)}`),
  ];
  return lines.join('\n');
}
