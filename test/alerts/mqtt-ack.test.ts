import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { createMqttAdapter, type MqttAdapter } from '../../alerts/mqtt.ts';
import type { RuleInput } from '../../alerts/rules/types.ts';
import { demoRegistry } from '../support/registry.ts';
import { startTestBroker, type TestBroker } from './support/aedes.ts';
import { until } from './support/harness.ts';

/**
 * The alerts process acknowledges a QoS 1 message only once the alert changes it caused are
 * durable: until then the broker keeps it for redelivery, so a crash cannot lose a raised alarm.
 */
describe('alerts MQTT acknowledgement waits for durability', () => {
  let broker: TestBroker;
  let adapter: MqttAdapter;
  let publisher: MqttClient;
  const inputs: RuleInput[] = [];
  const acked: number[] = [];
  const ackedBy: string[] = [];
  let gate: { promise: Promise<void>; open(): void } | undefined;
  const subscribed: Array<{ client: string; topic: string; qos: number; clean: boolean }> = [];

  beforeAll(async () => {
    broker = await startTestBroker();
    broker.broker.on('subscribe', (subs, client) => {
      for (const sub of subs) subscribed.push({ client: client.id, topic: sub.topic, qos: sub.qos, clean: client.clean });
    });
    broker.broker.on('ack', (packet, client) => {
      if (client?.id.startsWith('svc-alerts') === true && packet !== undefined && 'payload' in packet) {
        acked.push((JSON.parse(String(packet.payload)) as { seq: number }).seq);
        ackedBy.push(client.id);
      }
    });
    adapter = createMqttAdapter({
      url: broker.url,
      password: 'demo-svc-alerts',
      registry: demoRegistry(),
      clock: createManualClock(),
      logger: pino({ level: 'silent' }),
      onInput: (i) => inputs.push(i),
      durable: () => gate?.promise,
    });
    await adapter.start();
    publisher = await mqtt.connectAsync(broker.url, { username: 'publisher', password: 'pw', protocolVersion: 4, reconnectPeriod: 0 });
  });

  afterAll(async () => {
    await publisher?.endAsync();
    await adapter?.close();
    await broker?.close();
  });

  const topic = deviceTopic('h01', 'h01-mcp-f1-corridor', 'event');
  const send = (seq: number): Promise<unknown> => publisher.publishAsync(topic, JSON.stringify({ ts: Date.now(), seq, type: 'manual_call_point' }), { qos: 1 });

  it('acknowledges at once when nothing is waiting to be made durable', async () => {
    await send(1);
    await until(() => acked.includes(1), 'the PUBACK of seq 1');
    expect(inputs.map((i) => (i.type === 'event' ? i.event.seq : -1))).toEqual([1]);
  });

  it('passes an event received twice (same device ts and seq: a redelivery) to the rules once', async () => {
    const ts = Date.now();
    const body = JSON.stringify({ ts, seq: 900, type: 'manual_call_point' });
    await publisher.publishAsync(topic, body, { qos: 1 });
    await publisher.publishAsync(topic, body, { qos: 1 });
    // Same seq, another time: a new press after a device reboot, not a copy.
    await publisher.publishAsync(topic, JSON.stringify({ ts: ts + 1, seq: 900, type: 'manual_call_point' }), { qos: 1 });
    await until(() => acked.filter((s) => s === 900).length === 3, 'the PUBACKs of all three');
    expect(inputs.flatMap((i) => (i.type === 'event' && i.event.seq === 900 ? [i.ts] : []))).toEqual([ts, ts + 1]);
    expect(adapter.stats().duplicateEvents).toBe(1);
    inputs.splice(0);
  });

  it('holds the PUBACK while the journal is not synced, and sends it once it is', async () => {
    let open = (): void => undefined;
    gate = { promise: new Promise<void>((r) => (open = r)), open: () => open() };
    await send(2);
    await until(() => inputs.some((i) => i.type === 'event' && i.event.seq === 2), 'seq 2 to reach the rules');
    // Not a timing assertion: the PUBACK cannot come while the gate is shut, however long we look.
    await new Promise((r) => setTimeout(r, 300));
    expect(acked).not.toContain(2);
    gate.open();
    gate = undefined;
    await until(() => acked.includes(2), 'the PUBACK of seq 2 after the sync');
  });

  it('keeps reading while a PUBACK waits, and acknowledges in the order received [MQTT-4.6.0-2]', async () => {
    let open = (): void => undefined;
    gate = { promise: new Promise<void>((r) => (open = r)), open: () => open() };
    void send(3);
    await until(() => inputs.some((i) => i.type === 'event' && i.event.seq === 3), 'seq 3 to reach the rules');
    // Nothing waits for durability from here on, but seq 4's PUBACK must still follow seq 3's.
    gate = undefined;
    void send(4);
    // With mqtt.js the whole stream stopped behind a held PUBACK: seq 4 never reached the rules.
    await until(() => inputs.some((i) => i.type === 'event' && i.event.seq === 4), 'seq 4 to reach the rules while seq 3 is unacknowledged');
    await new Promise((r) => setTimeout(r, 300));
    expect(acked).not.toContain(3);
    expect(acked).not.toContain(4);
    open();
    await until(() => acked.includes(4), 'both PUBACKs after the sync');
    expect(acked.slice(-2)).toEqual([3, 4]);
  });

  it('receives events and statuses on their own session, telemetry on another', async () => {
    await publisher.publishAsync(deviceTopic('h01', 'h01-mcp-f1-corridor', 'status'), JSON.stringify({ ts: Date.now(), seq: 5, online: true }), { qos: 1 });
    await until(() => acked.includes(5), 'the PUBACK of the status');
    expect(ackedBy.slice(-1)).toEqual(['svc-alerts-signals']);
    expect(new Set(ackedBy)).toEqual(new Set(['svc-alerts-signals']));
  });

  it('keeps signals on a persistent QoS 1 session and takes telemetry as a live feed (clean, QoS 0)', async () => {
    const by = (id: string): Array<{ qos: number; clean: boolean }> => subscribed.filter((x) => x.client === id).map(({ qos, clean }) => ({ qos, clean }));
    expect(by('svc-alerts-signals').length).toBeGreaterThan(0);
    expect(new Set(by('svc-alerts-signals').map((x) => JSON.stringify(x)))).toEqual(new Set([JSON.stringify({ qos: 1, clean: false })]));
    expect(by('svc-alerts-telemetry').length).toBeGreaterThan(0);
    expect(new Set(by('svc-alerts-telemetry').map((x) => JSON.stringify(x)))).toEqual(new Set([JSON.stringify({ qos: 0, clean: true })]));
    // The live feed still delivers readings to the rules.
    await publisher.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'telemetry'), JSON.stringify({ ts: Date.now(), seq: 6, metrics: { temperature_c: 22 } }), { qos: 1 });
    await until(() => inputs.some((i) => i.type === 'telemetry' && i.device.id === 'h01-sd-r101'), 'the reading to reach the rules');
  });
});
