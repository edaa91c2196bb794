// SCRATCH instrumentation, not to be committed.
import { connect as tcpConnect } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js';
import Redis from 'ioredis';
import { FILTERS, deviceTopic } from '../../contract/topics.ts';
import type { Device } from '../../contract/registry.ts';
import type { Broker } from '../../broker/broker.ts';
import { redisOptions } from '../../broker/redis-persistence.ts';
import { demoRegistry } from '../support/registry.ts';
import { connect, connectRecording, record, startBroker, until } from './helpers.ts';
import { writeFileSync } from 'node:fs';

const DB = 6;
const redisUrl = `${inject('redisUrl')}/${DB}`;
const t0 = Date.now();
const logs: string[] = [];
const L = (s: string) => logs.push(`${String(Date.now() - t0).padStart(6)} ${s}`);

const P = AsyncRedisPersistence.prototype as any;
for (const m of ['outgoingEnqueueCombi', 'outgoingUpdate', 'outgoingClearMessageId', 'destroy', 'subscriptionsByTopic', 'storeRetained', 'addSubscriptions']) {
  const orig = P[m];
  P[m] = async function (...args: any[]) {
    const desc = args.map((a: any) => (a && a.topic ? `{t:${a.topic.split('/').pop()},id:${a.messageId},bc:${a.brokerCounter},p:${a.payload?.toString?.().slice(0, 60)}}` : a && a.id ? `client:${a.id}` : Array.isArray(a) ? `[${a.length}]` : String(a))).join(' ');
    L(`> ${m} ${desc}`);
    try { const r = await orig.apply(this, args); L(`< ${m} ${desc} -> ${Array.isArray(r) ? '[' + r.length + ']' : typeof r}`); return r; }
    catch (e) { L(`! ${m} ${desc} ${e}`); throw e; }
  };
}

function flushDb(): Promise<void> {
  const { host, port } = redisOptions(redisUrl);
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, host, () => s.write(`SELECT ${DB}\r\nFLUSHDB\r\n`));
    let reply = '';
    s.on('data', (d) => { reply += d.toString(); if (reply.split('\r\n').filter((l) => l.startsWith('+OK')).length >= 2) { s.end(); resolve(); } });
    s.once('error', reject);
  });
}
const brokers: Broker[] = [];
const clients: MqttClient[] = [];
async function start(): Promise<Broker> { const b = await startBroker({ config: { redisUrl } }); brokers.push(b); return b; }
let mon: any;
beforeAll(async () => {
  await flushDb();
  const r = new Redis(redisOptions(redisUrl));
  mon = await r.monitor();
  mon.on('monitor', (_time: string, args: string[], _src: string, db: string) => { if (db === String(DB)) L(`  REDIS ${args.map((a) => String(a).slice(0, 50)).join(' ')}`); });
  await r.quit();
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  for (const b of brokers) await b.close();
  mon.disconnect();
});

it('instrumented', async () => {
  const device = demoRegistry().site.devices[0] as Device;
  const telemetryTopic = deviceTopic(device.homeId, device.id, 'telemetry');
  const statusTopic = deviceTopic(device.homeId, device.id, 'status');
  const first = await start();
  first.aedes.on('clientDisconnect', (c) => L(`aedes clientDisconnect ${c.id}`));
  first.aedes.on('client', (c) => L(`aedes client ${c.id}`));
  first.aedes.on('publish', (p, c) => { if (!p.topic.startsWith('$SYS')) L(`aedes published ${p.topic.split('/').pop()} ${p.payload.toString().slice(0, 40)} from ${c?.id}`); });

  const ingest1 = await connect(first, 'svc-ingest', { clientId: 'svc-ingest-persist', clean: false });
  await ingest1.subscribeAsync([FILTERS.telemetry], { qos: 1 });
  L('ingest1 subscribed');
  ingest1.on('message', (t, p) => L(`ingest1 GOT ${p.toString()}`));
  await ingest1.endAsync();
  L('ingest1 ended');

  const dev = await connect(first, device.id);
  clients.push(dev);
  await dev.publishAsync(statusTopic, JSON.stringify({ ts: 1, online: true }), { qos: 1, retain: true });
  for (let seq = 1; seq <= 5; seq++) {
    await dev.publishAsync(telemetryTopic, JSON.stringify({ ts: 1_767_225_600_000 + seq, seq, metrics: { temperature_c: 20 + seq } }), { qos: 1 });
    L(`dev PUBACK seq ${seq}`);
  }
  L('first.close start');
  await first.close();
  L('first.close done');

  const second = await start();
  L('second started');
  const { client: ingest2, received: got } = await connectRecording(second, 'svc-ingest', { clientId: 'svc-ingest-persist', clean: false });
  clients.push(ingest2);
  ingest2.on('message', (t, p) => L(`ingest2 GOT ${p.toString()}`));
  let ok = true;
  try {
    await until('5 queued messages', () => got.filter((m) => m.topic === telemetryTopic).length >= 5, 5000);
  } catch { ok = false; }
  L(`result ok=${ok} got=${got.map((m) => m.payload.toString()).join('|')}`);
  await new Promise((r) => setTimeout(r, 200));
  writeFileSync(`/tmp/rp/trace-${ok ? 'ok' : 'FAIL'}-${Date.now()}.log`, logs.join('\n'));
  expect(ok).toBe(true);
});
