import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';

/**
 * The alerts process drops a redelivered copy of a device event (alerts/mqtt.ts repeatedEvent): the
 * same device ts and seq, stamped by the broker within REDELIVERY_HORIZON_MS of the one it had. No
 * broker here: the session is replaced so the test hands the adapter its messages directly.
 */
const deliver: Array<(batch: unknown[]) => void> = [];
vi.mock('../../common/mqtt-session.ts', () => ({
  createMqttSession: (o: { onMessages: (batch: unknown[]) => void }) => {
    deliver.push(o.onMessages);
    return { start() {}, ack() {}, whenSubscribed: () => Promise.resolve(), close: () => Promise.resolve(), stats: () => ({ connected: true }) };
  },
}));
vi.mock('mqtt', () => ({
  default: {
    connect: () => {
      const c = new EventEmitter() as EventEmitter & Record<string, unknown>;
      setTimeout(() => c.emit('connect'), 1);
      c.publish = () => undefined;
      c.disconnected = true;
      c.endAsync = () => Promise.resolve();
      return c;
    },
  },
}));

const { createMqttAdapter, REDELIVERY_HORIZON_MS } = await import('../../alerts/mqtt.ts');
const { createManualClock } = await import('../../common/clock.ts');
const { demoRegistry } = await import('../support/registry.ts');

const DAY = 24 * 3600_000;
const T0 = Date.UTC(2026, 0, 1);
// An RTC that restarts at its 2000-01-01 default after each power loss (docs/protocol.md "Device clock").
const RTC_DEFAULT = Date.UTC(2000, 0, 1);
const TOPIC = 'carewatch/v1/h01/h01-mcp-f1-corridor/event';

async function adapter() {
  deliver.length = 0;
  const seqs: number[] = [];
  const logger = { child: () => logger, info() {}, warn() {}, error() {}, debug() {} } as never;
  const a = createMqttAdapter({
    url: 'mqtt://test',
    password: 'p',
    registry: demoRegistry(),
    clock: createManualClock(T0),
    logger,
    onInput: (i) => {
      if (i.type === 'event') seqs.push(i.event.seq);
    },
  });
  await a.start();
  const onMessages = deliver[0]!;
  const send = (ts: number, seq: number, brokerTs: number): void =>
    onMessages([{ topic: TOPIC, payload: Buffer.from(JSON.stringify({ ts, seq, type: 'manual_call_point', brokerTs })), qos: 1, messageId: 1, connection: 1 }]);
  return { a, seqs, send };
}

describe('duplicate device events: same key and a broker stamp within the redelivery horizon', () => {
  it('a call point pressed after a reboot with a reset clock, 19 days later, with the same ts and seq, reaches the rules (it was dropped)', async () => {
    const { a, seqs, send } = await adapter();
    send(RTC_DEFAULT + 3000, 0, T0); // boot 1: pressed 3 s after boot
    send(RTC_DEFAULT + 3000, 0, T0 + 19 * DAY); // boot 2: pressed 3 s after boot
    expect(seqs).toEqual([0, 0]);
    expect(a.stats().duplicateEvents).toBe(0);
    await a.close();
  });

  it('a copy from a session queue keeps its broker stamp, so it is dropped however late it comes', async () => {
    const { a, seqs, send } = await adapter();
    send(T0 - 50, 7, T0);
    send(T0 - 50, 7, T0);
    expect(seqs).toEqual([7]);
    expect(a.stats().duplicateEvents).toBe(1);
    await a.close();
  });

  it('a copy the device re-sent after a broker crash, stamped anew within the horizon, is dropped; past it, it reaches the rules', async () => {
    const { a, seqs, send } = await adapter();
    send(T0 - 50, 8, T0);
    send(T0 - 50, 8, T0 + 40_000); // the broker back and the device reconnected 40 s later
    send(T0 - 50, 8, T0 + REDELIVERY_HORIZON_MS); // at the horizon: still a copy
    expect(seqs).toEqual([8]);
    expect(a.stats().duplicateEvents).toBe(2);
    // Past the horizon: raised again rather than risk dropping a real press. It is then the one
    // remembered, and its own copy is dropped.
    send(T0 - 50, 8, T0 + REDELIVERY_HORIZON_MS + 1);
    send(T0 - 50, 8, T0 + REDELIVERY_HORIZON_MS + 1);
    expect(seqs).toEqual([8, 8]);
    expect(a.stats().duplicateEvents).toBe(3);
    await a.close();
  });
});
