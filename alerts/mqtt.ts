import mqtt, { type MqttClient } from 'mqtt';
import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import { decodeDeviceMessage, type RejectCode } from '../contract/device-message.ts';
import type { AlertMessage } from '../contract/payloads.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { FILTERS, alertsTopic } from '../contract/topics.ts';
import type { RuleInput } from './rules/types.ts';

/**
 * The alerts process's MQTT side: a persistent session (clean=false) as svc-alerts, QoS 1
 * subscriptions to device telemetry, events and status, and QoS 1 publication of every alert change.
 * Alerting never waits for InfluxDB or ingest (docs/architecture.md "Delivery guarantees").
 */
export const ALERTS_CLIENT_ID = 'svc-alerts';

export interface MqttAdapterDeps {
  readonly url: string;
  readonly password: string;
  readonly registry: RegistryIndex;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onInput: (input: RuleInput) => void;
  /**
   * Undefined when every alert change made so far is durable, else a promise of it. The QoS 1
   * PUBACK of a message waits for it, so a crash between raising an alert and journaling it makes
   * the broker redeliver the message instead of losing the alert [MQTT-4.3.2-2].
   */
  readonly durable?: () => Promise<void> | undefined;
  readonly username?: string;
  readonly clientId?: string;
}

export interface MqttAdapter {
  start(): Promise<void>;
  publishAlert(alert: AlertMessage): void;
  stats(): { received: number; rejected: Partial<Record<RejectCode, number>>; published: number; publishFailures: number; connected: boolean };
  close(): Promise<void>;
}

/** Turns a decoded device message into the rules' input; `receivedTs` is the platform clock now. */
export function toRuleInput(msg: Exclude<ReturnType<typeof decodeDeviceMessage>, { ok: false }>, now: number): RuleInput {
  const broker = msg.payload.brokerTs !== undefined ? { brokerTs: msg.payload.brokerTs } : {};
  switch (msg.channel) {
    case 'telemetry':
      return { type: 'telemetry', now, ...broker, device: msg.device, ts: msg.payload.ts, receivedTs: now, metrics: msg.payload.metrics };
    case 'event':
      return { type: 'event', now, ...broker, device: msg.device, ts: msg.payload.ts, receivedTs: now, event: msg.payload };
    case 'status':
      return {
        type: 'status',
        now,
        ...broker,
        device: msg.device,
        ts: msg.payload.ts,
        receivedTs: now,
        online: msg.payload.online,
        ...(msg.payload.reason !== undefined ? { reason: msg.payload.reason } : {}),
      };
  }
}

export function createMqttAdapter(deps: MqttAdapterDeps): MqttAdapter {
  const log = deps.logger.child({ component: 'mqtt' });
  const username = deps.username ?? ALERTS_CLIENT_ID;
  let client: MqttClient | undefined;
  let received = 0;
  let published = 0;
  let publishFailures = 0;
  const rejected: Partial<Record<RejectCode, number>> = {};

  function onMessage(topic: string, payload: Buffer): void {
    received++;
    try {
      const msg = decodeDeviceMessage(topic, payload, deps.registry);
      if (!msg.ok) {
        rejected[msg.code] = (rejected[msg.code] ?? 0) + 1;
        log.warn({ topic: topic.slice(0, 200), code: msg.code, reason: msg.reason }, 'device message rejected');
        return;
      }
      deps.onInput(toRuleInput(msg, deps.clock.now()));
    } catch (err) {
      log.error({ err, topic: topic.slice(0, 200), code: 'ALERTS_INPUT_FAILED' }, 'device message handling failed');
    }
  }

  return {
    async start() {
      const c = mqtt.connect(deps.url, {
        protocolVersion: 4, // MQTT 3.1.1, as the contract specifies
        username,
        password: deps.password,
        clientId: deps.clientId ?? username,
        // A persistent session: QoS 1 messages published while we are away are kept for us [MQTT-3.1.2-4].
        clean: false,
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
        resubscribe: true,
      });
      client = c;
      c.on('message', onMessage);
      const durable = deps.durable;
      if (durable !== undefined) {
        // mqtt.js emits 'message' (rules run, alerts are raised and journaled), then calls
        // handleMessage and sends the PUBACK from its callback, one message at a time. Most
        // messages change no alert and are acknowledged at once; one that did waits for the fsync.
        c.handleMessage = (_packet, callback) => {
          const pending = durable();
          if (pending === undefined) callback();
          else pending.then(() => callback(), (err: unknown) => callback(err as Error));
        };
      }
      c.on('error', (err) => log.error({ err, code: 'ALERTS_MQTT_ERROR' }, 'MQTT error'));
      c.on('offline', () => log.warn({ code: 'ALERTS_MQTT_OFFLINE' }, 'MQTT connection lost; reconnecting'));
      c.on('connect', (connack) => {
        log.info({ sessionPresent: connack.sessionPresent }, 'MQTT connected');
        // With a stored session the broker still has our subscriptions [MQTT-3.2.2-2]; renewing them is harmless.
        c.subscribe([FILTERS.telemetry, FILTERS.event, FILTERS.status], { qos: 1 }, (err, granted) => {
          if (err) return log.error({ err, code: 'ALERTS_MQTT_SUBSCRIBE' }, 'subscribe failed');
          const refused = (granted ?? []).filter((g) => g.qos === 128);
          if (refused.length > 0) log.error({ refused: refused.map((g) => g.topic), code: 'ALERTS_MQTT_SUBSCRIBE' }, 'broker refused subscriptions');
        });
      });
      await new Promise<void>((resolve, reject) => {
        const onConnect = (): void => {
          c.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          // Authentication failures do not get better by retrying: fail start with a clear reason.
          if (/Not authorized|Bad username or password/i.test(err.message)) {
            c.off('connect', onConnect);
            c.end(true);
            reject(new Error(`MQTT login as ${username} refused: ${err.message}`));
          }
        };
        c.once('connect', onConnect);
        c.on('error', onError);
      });
    },
    publishAlert(alert) {
      const c = client;
      if (c === undefined) return;
      let topic: string;
      try {
        topic = alertsTopic(alert.homeId);
      } catch (err) {
        publishFailures++;
        log.error({ err, alertId: alert.id }, 'cannot build the alerts topic');
        return;
      }
      // QoS 1: mqtt.js keeps it in its outgoing store across reconnects until PUBACK.
      c.publish(topic, JSON.stringify(alert), { qos: 1 }, (err) => {
        if (err) {
          publishFailures++;
          log.error({ err, alertId: alert.id, code: 'ALERTS_MQTT_PUBLISH' }, 'alert publish failed');
        } else published++;
      });
    },
    stats: () => ({ received, rejected: { ...rejected }, published, publishFailures, connected: client?.connected === true }),
    async close() {
      const c = client;
      client = undefined;
      if (c === undefined) return;
      // A clean DISCONNECT when the broker is there; never hang on one that is gone.
      await Promise.race([c.endAsync(false), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
      if (!c.disconnected) await c.endAsync(true);
    },
  };
}
