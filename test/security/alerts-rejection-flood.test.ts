import { Writable } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { createMqttAdapter, REJECTION_LOG_BURST, REJECTION_LOG_WINDOW_MS, type MqttAdapter } from '../../alerts/mqtt.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { demoRegistry } from '../support/registry.ts';
import { startTestBroker, type TestBroker } from '../alerts/support/aedes.ts';
import { until } from '../alerts/support/harness.ts';

/**
 * Issue 12 "Hostile input": one device sending bad messages in a loop made the alerts process log
 * every one (1,981 warn lines, 538 KB). Now every rejection is counted by code, exactly, and the log
 * holds at most REJECTION_LOG_BURST lines per code per window plus one summary line per window with
 * the number suppressed. Real broker (aedes), real MQTT client, the alerts process's MQTT adapter;
 * log lines counted from a pino destination stream; the window moves on the manual clock.
 */
describe('alerts process: a flood of invalid messages from one device', () => {
  let broker: TestBroker;
  let adapter: MqttAdapter;
  let publisher: MqttClient;
  const clock = createManualClock();
  const inputs: RuleInput[] = [];
  const lines: Array<Record<string, unknown>> = [];
  let logBytes = 0;
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logBytes += chunk.length;
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });

  const device = 'h01-mcp-f1-corridor';
  const event = deviceTopic('h01', device, 'event');
  const status = deviceTopic('h01', device, 'status');
  /** What the device sends, per code: events and statuses, on the alerts process's QoS 1 session, so none may be lost. */
  const FLOOD = [
    { code: 'MALFORMED_JSON', n: 1200, topic: event, payload: (seq: number) => `{"ts":${seq},"seq":` },
    { code: 'SCHEMA', n: 500, topic: status, payload: (seq: number) => JSON.stringify({ ts: seq, online: 'yes' }) },
    { code: 'EVENT_NOT_ALLOWED', n: 300, topic: event, payload: (seq: number) => JSON.stringify({ ts: seq, seq, type: 'fall' }) },
  ] as const;
  const TOTAL = FLOOD.reduce((s, f) => s + f.n, 0);
  const rejectedLines = (): Array<Record<string, unknown>> => lines.filter((l) => l.msg === 'device message rejected');
  const summaries = (): Array<Record<string, unknown>> => lines.filter((l) => typeof l.suppressed === 'number');

  beforeAll(async () => {
    broker = await startTestBroker();
    adapter = createMqttAdapter({ url: broker.url, password: 'demo-svc-alerts', registry: demoRegistry(), clock, logger: pino({ level: 'warn' }, stream), onInput: (i) => inputs.push(i) });
    await adapter.start();
    publisher = await mqtt.connectAsync(broker.url, { username: 'publisher', password: 'pw', protocolVersion: 4, reconnectPeriod: 0 });
  });

  afterAll(async () => {
    await publisher?.endAsync();
    await adapter?.close();
    await broker?.close();
  });

  async function flood(n: number, topic: string, payload: (seq: number) => string): Promise<void> {
    for (let start = 0; start < n; start += 200) {
      const batch: Promise<unknown>[] = [];
      for (let seq = start; seq < Math.min(n, start + 200); seq++) batch.push(publisher.publishAsync(topic, payload(seq), { qos: 1 }));
      await Promise.all(batch);
    }
  }

  it('counts every rejection by code, exactly, and logs at most the burst per code', async () => {
    for (const f of FLOOD) await flood(f.n, f.topic, f.payload);
    await until(() => adapter.stats().received >= TOTAL, `all ${TOTAL} messages received`);
    const stats = adapter.stats();
    expect(stats.received).toBe(TOTAL);
    expect(stats.rejected).toEqual({ MALFORMED_JSON: 1200, SCHEMA: 500, EVENT_NOT_ALLOWED: 300 });
    expect(stats.rejectedTotal).toBe(TOTAL);
    // One window (the manual clock has not moved): the first REJECTION_LOG_BURST of each code.
    const logged = rejectedLines();
    for (const f of FLOOD) expect(logged.filter((l) => l.code === f.code).length, f.code).toBe(REJECTION_LOG_BURST);
    expect(lines.length).toBe(FLOOD.length * REJECTION_LOG_BURST);
    // Each logged line still says which device and why.
    expect(logged[0]).toMatchObject({ topic: event, code: 'MALFORMED_JSON', component: 'mqtt' });
    expect(String(logged[0]?.reason)).toContain('not JSON');
    expect(logBytes).toBeLessThan(20_000);
  });

  it('writes one summary per code when the window ends, with the number suppressed', async () => {
    clock.advance(REJECTION_LOG_WINDOW_MS);
    const sums = summaries();
    expect(sums.map((s) => [s.code, s.suppressed, s.count]).sort()).toEqual(FLOOD.map((f) => [f.code, f.n - REJECTION_LOG_BURST, f.n]).sort());
    // Logged plus suppressed adds up to the count: nothing is unaccounted for.
    for (const f of FLOOD) {
      const logged = rejectedLines().filter((l) => l.code === f.code).length;
      const suppressed = sums.filter((s) => s.code === f.code).reduce((n, s) => n + (s.suppressed as number), 0);
      expect(logged + suppressed, f.code).toBe(f.n);
    }
    // Nothing more is pending: advancing again writes nothing.
    const before = lines.length;
    clock.advance(REJECTION_LOG_WINDOW_MS);
    expect(lines.length).toBe(before);
  });

  it('starts a new window for the next flood and sums up its end on close; valid signals keep reaching the rules', async () => {
    await flood(300, event, (seq) => `{"ts":${seq}`);
    await publisher.publishAsync(event, JSON.stringify({ ts: clock.now(), seq: 1, type: 'manual_call_point' }), { qos: 1 });
    await until(() => inputs.some((i) => i.type === 'event' && i.event.type === 'manual_call_point'), 'the call point to reach the rules');
    await until(() => adapter.stats().received >= TOTAL + 301, 'the second flood received');
    expect(adapter.stats().rejected.MALFORMED_JSON).toBe(1500);
    expect(rejectedLines().filter((l) => l.code === 'MALFORMED_JSON').length).toBe(2 * REJECTION_LOG_BURST);
    await adapter.close();
    const last = summaries().filter((s) => s.code === 'MALFORMED_JSON').at(-1);
    expect(last).toMatchObject({ suppressed: 300 - REJECTION_LOG_BURST, count: 1500 });
    // The whole run: 2,300 rejections in at most (burst + 1) lines per code per window.
    expect(lines.length).toBeLessThanOrEqual(2 * FLOOD.length * (REJECTION_LOG_BURST + 1));
  });
});
