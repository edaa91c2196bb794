import { connect, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock, ClockTimer } from '../common/clock.ts';
import type { EventPayload, StatusPayload, TelemetryPayload } from '../contract/payloads.ts';
import { deviceTopic } from '../contract/topics.ts';
import { INITIAL_STATE, sample, step, type ActiveShape, type DeviceModel, type DeviceState, type Sample } from './model.ts';

/**
 * One simulated device = one ordinary mqtt.js client speaking protocol v1 (docs/protocol.md):
 * username and client id = device id, password = its secret, keepalive 60 s, a retained QoS 1
 * last will `{"online":false}` on its status topic (the broker stamps `ts` when it fires), a
 * retained QoS 1 online status on every connect, telemetry at the kind's interval with device
 * `ts` and a per-device `seq`.
 */

/** Reporting period while a reading is off-normal or a scenario acts on the device ("report on change"). */
export const ACTIVE_REPORT_MS = 2000;
/** MQTT keepalive, s: the broker drops a silent connection after 1.5× this [MQTT-3.1.2-24]. */
export const KEEPALIVE_S = 60;

export interface SimDeviceDeps {
  readonly model: DeviceModel;
  readonly mqttUrl: string;
  readonly secret: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Shapes of the scenarios currently acting on this device, in start order. */
  readonly shapes: () => readonly ActiveShape[];
  /** Reconnect period of mqtt.js, ms. */
  readonly reconnectPeriodMs?: number;
}

export interface SimDeviceInfo {
  readonly id: string;
  readonly homeId: string;
  readonly roomId: string;
  readonly kind: string;
  readonly residentId?: string;
  readonly connected: boolean;
  /** False while a scenario has cut the device off. */
  readonly networkUp: boolean;
  readonly seq: number;
  readonly published: { readonly telemetry: number; readonly events: number };
  readonly last?: Sample;
}

export interface SimDevice {
  readonly id: string;
  /** Connects; resolves on the first successful CONNACK. */
  start(): Promise<void>;
  /** Stops publishing and disconnects cleanly (DISCONNECT: the will is discarded [MQTT-3.1.2-10]). */
  close(): Promise<void>;
  /** Network lost: destroys the socket without DISCONNECT, so the broker publishes the last will [MQTT-3.1.2-8]. */
  goOffline(): void;
  /** Network back: reconnects, republishes the online status, resumes telemetry. */
  goOnline(): void;
  /** Samples and publishes now (a scenario just started or ended), then keeps the usual rhythm. */
  publishNow(): void;
  info(): SimDeviceInfo;
}

export function createSimDevice(deps: SimDeviceDeps): SimDevice {
  const { model, clock } = deps;
  const d = model.device;
  const log = deps.logger.child({ device: d.id });
  const topics = {
    telemetry: deviceTopic(d.homeId, d.id, 'telemetry'),
    event: deviceTopic(d.homeId, d.id, 'event'),
    status: deviceTopic(d.homeId, d.id, 'status'),
  };
  let client: MqttClient | undefined;
  let timer: ClockTimer | undefined;
  let networkUp = true;
  let closed = false;
  let seq = 0;
  let state: DeviceState = INITIAL_STATE;
  let last: Sample | undefined;
  let errorLogged = false;
  /** Settles a start() still waiting for its first CONNACK when the device is closed. */
  let abandonStart: (() => void) | undefined;
  const published = { telemetry: 0, events: 0 };

  function publish(topic: string, payload: object, qos: 0 | 1, retain = false): void {
    client?.publish(topic, JSON.stringify(payload), { qos, retain }, (err) => {
      // QoS 0 to a closed socket, or a client ended mid-flight: the reading is simply lost, as on a real radio.
      if (err && !closed && networkUp) log.debug({ err: err.message, topic }, 'publish failed');
    });
  }

  function tick(): void {
    timer = undefined;
    if (closed || !networkUp) return;
    const now = clock.now();
    const shapes = deps.shapes();
    const s = sample(model, now, shapes);
    const r = step(model, state, s);
    state = r.state;
    last = s;
    if (s.flags.mute !== true && client?.connected === true) {
      for (const e of r.events) {
        const payload: EventPayload = { ts: now, seq: seq++, ...e };
        publish(topics.event, payload, 1);
        published.events++;
      }
      const payload: TelemetryPayload = { ts: now, seq: seq++, metrics: s.metrics };
      publish(topics.telemetry, payload, r.qos);
      published.telemetry++;
    }
    const active = shapes.length > 0 || state.offNormal;
    schedule(active ? Math.min(ACTIVE_REPORT_MS, model.intervalMs) : model.intervalMs);
  }

  function schedule(ms: number): void {
    if (timer) clock.clearTimeout(timer);
    timer = clock.setTimeout(tick, ms);
  }

  function stopTimer(): void {
    if (timer) clock.clearTimeout(timer);
    timer = undefined;
  }

  function connectClient(): Promise<void> {
    const c = connect(deps.mqttUrl, {
      protocolVersion: 4,
      clientId: d.id,
      username: d.id,
      password: deps.secret,
      keepalive: KEEPALIVE_S,
      clean: true,
      reconnectPeriod: deps.reconnectPeriodMs ?? 1000,
      connectTimeout: 10_000,
      // Readings taken while disconnected are not worth replaying late: a real sensor drops them.
      queueQoSZero: false,
      will: { topic: topics.status, payload: Buffer.from(JSON.stringify({ online: false })), qos: 1, retain: true },
    });
    client = c;
    return new Promise<void>((resolve) => {
      abandonStart = resolve;
      c.on('connect', () => {
        errorLogged = false;
        const status: StatusPayload = { ts: clock.now(), online: true, firmware: 'sim-1' };
        publish(topics.status, status, 1, true);
        resolve();
        // First reading after the stagger offset; after a reconnect, at once.
        if (!timer) schedule(seq === 0 ? model.offsetMs : 0);
      });
      c.on('error', (err) => {
        if (!errorLogged) log.warn({ err: err.message }, 'MQTT connection error (retrying)');
        errorLogged = true;
      });
    });
  }

  return {
    id: d.id,
    async start() {
      closed = false;
      await connectClient();
    },
    async close() {
      closed = true;
      stopTimer();
      abandonStart?.();
      const c = client;
      client = undefined;
      if (!c) return;
      // A graceful end waits for in-flight QoS 1 acks; if the broker is gone, give up after 2 s.
      let guard: NodeJS.Timeout | undefined;
      await Promise.race([
        c.endAsync(false).catch(() => undefined),
        new Promise<void>((resolve) => {
          guard = setTimeout(() => {
            c.end(true);
            resolve();
          }, 2000);
        }),
      ]);
      clearTimeout(guard);
    },
    goOffline() {
      if (!networkUp) return;
      networkUp = false;
      stopTimer();
      const c = client;
      client = undefined;
      // end(true) destroys the stream without sending DISCONNECT, exactly like a dropped network.
      c?.end(true);
    },
    goOnline() {
      if (networkUp || closed) return;
      networkUp = true;
      void connectClient();
    },
    publishNow() {
      if (closed || !networkUp) return;
      stopTimer();
      tick();
    },
    info() {
      return {
        id: d.id,
        homeId: d.homeId,
        roomId: d.roomId,
        kind: d.kind,
        ...(d.residentId !== undefined ? { residentId: d.residentId } : {}),
        connected: client?.connected === true,
        networkUp,
        seq,
        published: { ...published },
        ...(last !== undefined ? { last } : {}),
      };
    },
  };
}
