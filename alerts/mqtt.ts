import mqtt, { type MqttClient } from 'mqtt';
import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import { createMqttSession, type MqttSession, type ReceivedMessage } from '../common/mqtt-session.ts';
import { createRejectionLog } from '../common/rejection-log.ts';
import { decodeDeviceMessage, type ReceiveStamp, type RejectCode } from '../contract/device-message.ts';
import type { AlertMessage } from '../contract/payloads.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { alertsTopic, incidentsTopic } from '../contract/topics.ts';
import { deviceFilters, homeSessionId } from '../common/homes.ts';
import type { IncidentMessage } from '../contract/incidents.ts';
import type { RangedTelemetryInput } from './rules/input-range.ts';
import type { RuleInput } from './rules/types.ts';

/**
 * The alerts process's MQTT side. Alerting never waits for InfluxDB or ingest (docs/architecture.md
 * "Delivery guarantees").
 *
 * Two subscriptions receive device messages, and one clean client publishes alert changes:
 *  - `<id>-signals`: events and statuses (fire alarms, call points, falls, offline) on a persistent
 *    session (clean=false) at QoS 1: nothing is lost across our restarts, and a fire alarm never
 *    queues behind telemetry in a TCP stream or a parser (NFPA 72 ch. 10 "Signal Priority": fire
 *    alarm signals take precedence over all other signals; issue 6 measured call-point alarms
 *    waiting up to ~500 ms behind 10,000 msg/s of readings on one shared connection);
 *  - `<id>-telemetry`: readings, as a live feed (clean, QoS 0). A persistent QoS 1 copy of every
 *    reading made the broker store, number and clear each one twice (ingest's and ours); at
 *    10,000 msg/s that put the broker at its limit, and alarms then waited seconds in its FIFO
 *    queue behind readings (issue 6, session 3). Readings are stored by ingest (persistent, nothing
 *    lost); what a restart of this process misses is the readings of those seconds, and every
 *    device reports again within its interval (contract/device-kinds.ts), so a reading condition
 *    that persists is seen at the next report. Devices' own alarm decisions are events;
 *  - `<id>`: publishes alert changes at QoS 1. It connects clean, which also discards the single
 *    persistent session earlier versions kept under this id [MQTT-3.1.2-6], so the broker stops
 *    queueing every device message for a subscriber that no longer exists.
 *
 * On a broker cluster the signals sessions and the publisher may connect to another node than the
 * telemetry feed (`signalsUrl`, CAREWATCH_SIGNALS_MQTT_URL: the alarm lane, docs/scaling.md), so that
 * a node behind on the cluster's readings does not hold the alarms back.
 *
 * Messages reach the rules as soon as they are read; only their PUBACKs wait, per connection in
 * order [MQTT-4.6.0-2], until the alert changes made so far are durable. (mqtt.js could not do this:
 * it stops reading the next packet until a message's PUBACK callback returns, so every alert change
 * stalled the whole stream for one fsync.)
 */
export const ALERTS_CLIENT_ID = 'svc-alerts';

export interface MqttAdapterDeps {
  readonly url: string;
  /**
   * The alarm lane (docs/scaling.md): the signals sessions and the publisher connect here, the
   * telemetry feed to `url`. On a broker cluster this is a node that carries no telemetry, so an
   * alarm is not delivered behind the cluster's readings by a busy node. Default: `url`.
   */
  readonly signalsUrl?: string;
  /** CA of the broker's certificate for mqtts:// and wss:// (default: the system's roots). */
  readonly ca?: Buffer | undefined;
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
  /**
   * `service`: the broker stamps nothing (Mosquitto), so each message is judged with this process's
   * receive time (contract/device-message.ts ReceiveStamp). Default `broker`.
   */
  readonly receiveStamp?: ReceiveStamp;
  /**
   * Issue 14 (docs/scaling.md "Services partitioned by home"): these homes' devices only; unset: all. Each owned home's
   * events and statuses come on a persistent session of its own, `svc-alerts-home-{homeId}-signals`,
   * named after the home and not the instance: while the home moves between instances the broker
   * queues its alarms for that session, and the new owner receives them. Readings stay one live
   * feed per instance (`{clientId}-telemetry`, clean: nothing to move).
   */
  readonly homes?: readonly string[];
}

export interface MqttAdapter {
  start(): Promise<void>;
  publishAlert(alert: AlertMessage): void;
  /** Issue 11: one incident change on `carewatch/v1/{homeId}/incidents`, QoS 1, like alerts. */
  publishIncident(incident: IncidentMessage): void;
  stats(): MqttAdapterStats;
  close(): Promise<void>;
}

export interface MqttAdapterStats {
  readonly received: number;
  /** Events received again (same device, ts and seq, broker stamps within REDELIVERY_HORIZON_MS) and not passed to the rules a second time. */
  readonly duplicateEvents: number;
  /** Rejected device messages per code (contract/device-message.ts), exact however few are logged. */
  readonly rejected: Partial<Record<RejectCode, number>>;
  readonly rejectedTotal: number;
  /** Events and statuses taken at the broker's time because the device clock was off (docs/protocol.md "Device clock"). */
  readonly clockSkew: Partial<Record<'event' | 'status', number>>;
  readonly published: number;
  readonly publishFailures: number;
  readonly connected: boolean;
}

/**
 * Rejections are logged at most REJECTION_LOG_BURST lines per code per REJECTION_LOG_WINDOW_MS, then
 * one summary line per window with the number suppressed (as ingest does): a device sending the
 * same bad message in a loop wrote 1,981 warn lines (538 KB) here in one run (issue 12).
 */
export const REJECTION_LOG_BURST = 10;
export const REJECTION_LOG_WINDOW_MS = 10_000;

/** Turns a decoded device message into the rules' input; `receivedTs` is the platform clock now. */
export function toRuleInput(msg: Exclude<ReturnType<typeof decodeDeviceMessage>, { ok: false }>, now: number): RuleInput {
  const broker = msg.payload.brokerTs !== undefined ? { brokerTs: msg.payload.brokerTs } : {};
  switch (msg.channel) {
    case 'telemetry': {
      // Out-of-range readings travel with the input (alerts/rules/input-range.ts).
      const input: RangedTelemetryInput = {
        type: 'telemetry',
        now,
        ...broker,
        device: msg.device,
        ts: msg.payload.ts,
        receivedTs: now,
        metrics: msg.payload.metrics,
        ...(msg.outOfRange.length > 0 ? { outOfRange: msg.outOfRange } : {}),
      };
      return input;
    }
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

/** Events remembered per device to drop a redelivered copy (a redelivery follows its original closely). */
const RECENT_EVENTS = 16;

/**
 * How far apart the broker stamps (`brokerTs`) of an event and its copy may be for the copy to be
 * dropped. The key (device ts and seq) alone is not an identity: `seq` restarts at 0 after a reboot
 * (docs/protocol.md), and a device whose RTC restarts at its default after each power loss sends a
 * later, real press with the key of an earlier one (a call point pressed 3 s after two boots 19 days
 * apart was dropped). The stamp says when the broker received a message, and a copy keeps it: a
 * QoS 1 redelivery from a session queue carries the original's stamp however long it was queued
 * (the broker stamps on receipt, before it stores; docs/broker.md "A persistent session away for
 * hours"), so its distance is 0. Only a re-sent copy is stamped anew: a device re-sending what had
 * no PUBACK when the broker crashed (late by the broker's restart and the device's reconnect;
 * docs/broker.md "Reconnect after a crash" targets 3 s, measured 36 s before issue 12), or, with
 * `receiveStamp: 'service'`, a message redelivered when our session comes back (late by the cut;
 * only the few whose PUBACK waited for durability). 10 min covers those many times over; a copy
 * later than that (a broker down for longer) reaches the rules again: one more `reactivated`
 * entry, or a resolved call raised anew, which a person sees and closes; raising twice is better
 * than dropping a real alarm once. A restart of this process forgets them all anyway.
 */
export const REDELIVERY_HORIZON_MS = 10 * 60_000;

export function createMqttAdapter(deps: MqttAdapterDeps): MqttAdapter {
  const log = deps.logger.child({ component: 'mqtt' });
  const username = deps.username ?? ALERTS_CLIENT_ID;
  const baseId = deps.clientId ?? username;
  const signalsUrl = deps.signalsUrl ?? deps.url;
  let client: MqttClient | undefined;
  let sessions: MqttSession[] = [];
  let received = 0;
  let published = 0;
  let publishFailures = 0;
  const clockNow = (): number => deps.clock.now();
  // Timers on the injected clock write a window's summary when it ends, even if the flood stopped.
  const rejections = createRejectionLog<RejectCode>(log, clockNow, REJECTION_LOG_BURST, REJECTION_LOG_WINDOW_MS, 'device message rejected', deps.clock);
  const clockSkew = createRejectionLog<'event' | 'status'>(
    log,
    clockNow,
    REJECTION_LOG_BURST,
    REJECTION_LOG_WINDOW_MS,
    'device clock outside the window: taken at the broker time, flagged',
    deps.clock,
  );
  /** PUBACK batches still waiting for durability; close() lets them go out first. */
  const waitingAcks = new Set<Promise<void>>();
  /**
   * The last few events of each device, by its own ts and seq, with the broker's stamp: the same
   * event may arrive twice, as after any QoS 1 redelivery, and since the broker delivers before its
   * fdatasync, when a broker crash made the device send an event again that this process already
   * had. A second SOS or call point press is a `reactivated` audit entry, so a copy must not count
   * as one. A copy is the same key stamped within REDELIVERY_HORIZON_MS of the remembered one; the
   * same key stamped later is a new event (a device rebooted with its clock reset) and replaces it.
   * Bounded: the decoder admits only registered devices, RECENT_EVENTS each.
   */
  const recentEvents = new Map<string, Array<{ key: string; brokerTs: number }>>();
  let duplicateEvents = 0;
  function repeatedEvent(deviceId: string, key: string, brokerTs: number): boolean {
    let recent = recentEvents.get(deviceId);
    if (recent === undefined) recentEvents.set(deviceId, (recent = []));
    const i = recent.findIndex((e) => e.key === key);
    if (i >= 0) {
      if (Math.abs(brokerTs - (recent[i] as { brokerTs: number }).brokerTs) <= REDELIVERY_HORIZON_MS) return true;
      recent.splice(i, 1);
    }
    recent.push({ key, brokerTs });
    if (recent.length > RECENT_EVENTS) recent.shift();
    return false;
  }

  function handle(topic: string, payload: Buffer, now: number): void {
    received++;
    try {
      const msg = decodeDeviceMessage(topic, payload, deps.registry, deps.receiveStamp === 'service' ? now : undefined);
      if (!msg.ok) {
        rejections.record(msg.code, topic, msg.reason);
        return;
      }
      // No broker stamp only where no carewatch broker stamped it (unit tests): our receive time.
      if (msg.channel === 'event' && repeatedEvent(msg.device.id, `${msg.clockSkew?.deviceTs ?? msg.payload.ts}:${msg.payload.seq}`, msg.payload.brokerTs ?? now)) {
        duplicateEvents++;
        return;
      }
      if (msg.channel !== 'telemetry' && msg.clockSkew !== undefined) clockSkew.record(msg.channel, topic, `${msg.device.id}: ${msg.clockSkew.reason}`);
      deps.onInput(toRuleInput(msg, now));
    } catch (err) {
      log.error({ err, topic: topic.slice(0, 200), code: 'ALERTS_INPUT_FAILED' }, 'device message handling failed');
    }
  }

  /** One subscribing session; its PUBACKs leave in order, each batch once what it changed is durable. */
  function subscriber(clientId: string, suffix: string, filters: readonly string[], live = false): MqttSession {
    // The tail of this connection's PUBACK chain while any batch still waits for durability.
    let tail: Promise<void> | undefined;
    const session: MqttSession = createMqttSession({
      url: live ? deps.url : signalsUrl,
      ca: deps.ca,
      clientId,
      username,
      password: deps.password,
      filters,
      logger: log.child({ session: suffix }),
      codePrefix: 'ALERTS',
      live,
      onMessages: (batch: ReceivedMessage[]) => {
        const now = deps.clock.now();
        // Stamping on receipt, a retained copy re-sent at SUBSCRIBE would come in as news at a new
        // time (a will as a fresh offline, a retained event as a new alarm); the persistent signals
        // session already had the live one [MQTT-3.3.1-9]. Acknowledged all the same.
        const replayed = deps.receiveStamp === 'service';
        for (const m of batch) if (!(replayed && m.retain === true)) handle(m.topic, m.payload, now);
        const first = batch[0];
        if (first === undefined) return;
        const ids: number[] = [];
        for (const m of batch) if (m.qos === 1) ids.push(m.messageId);
        // The live telemetry feed (QoS 0) has nothing to acknowledge: no PUBACK chain for it.
        if (ids.length === 0) return;
        const pending = deps.durable?.();
        if (pending === undefined && tail === undefined) {
          session.ack(first.connection, ids);
          return;
        }
        const next: Promise<void> = (tail ?? Promise.resolve())
          .then(() => pending)
          .then(
            () => session.ack(first.connection, ids),
            // Not acknowledged: the broker keeps these and redelivers them on the next connection.
            (err: unknown) => log.error({ err, code: 'ALERTS_NOT_DURABLE', messages: ids.length }, 'alert changes not durable; messages left unacknowledged'),
          );
        tail = next;
        waitingAcks.add(next);
        void next.then(() => {
          waitingAcks.delete(next);
          if (tail === next) tail = undefined;
        });
      },
    });
    return session;
  }

  function publishTo(topicOf: () => string, message: AlertMessage | IncidentMessage, ctx: Record<string, string>): void {
    const c = client;
    if (c === undefined) return;
    let topic: string;
    try {
      topic = topicOf();
    } catch (err) {
      publishFailures++;
      log.error({ err, ...ctx, code: 'ALERTS_MQTT_PUBLISH' }, 'cannot build the topic');
      return;
    }
    // QoS 1: mqtt.js keeps it in its outgoing store across reconnects until PUBACK.
    c.publish(topic, JSON.stringify(message), { qos: 1 }, (err) => {
      if (err) {
        publishFailures++;
        log.error({ err, ...ctx, code: 'ALERTS_MQTT_PUBLISH' }, 'publish failed');
      } else published++;
    });
  }

  return {
    async start() {
      const c = mqtt.connect(signalsUrl, {
        protocolVersion: 4, // MQTT 3.1.1, as the contract specifies
        username,
        password: deps.password,
        clientId: baseId,
        // Publishes only; its QoS 1 alert changes wait in mqtt.js's store across reconnects.
        clean: true,
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
        // mqtts:// and wss://: verify the broker against this CA (mqtt.js passes it to tls.connect).
        ...(deps.ca !== undefined ? { ca: deps.ca } : {}),
      });
      client = c;
      c.on('error', (err) => log.error({ err, code: 'ALERTS_MQTT_ERROR' }, 'MQTT error'));
      c.on('offline', () => log.warn({ code: 'ALERTS_MQTT_OFFLINE' }, 'MQTT connection lost; reconnecting'));
      c.on('connect', () => log.info('MQTT publisher connected'));
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
      const homes = deps.homes;
      const signals =
        homes === undefined
          ? [subscriber(`${baseId}-signals`, 'signals', deviceFilters(['event', 'status'], undefined))]
          : homes.map((h) => subscriber(`${homeSessionId(username, h)}-signals`, `${h}-signals`, deviceFilters(['event', 'status'], [h])));
      sessions = [...signals, subscriber(`${baseId}-telemetry`, 'telemetry', deviceFilters(['telemetry'], homes), true)];
      for (const s of sessions) s.start();
      await Promise.all(sessions.map((s) => s.whenSubscribed()));
    },
    publishAlert(alert) {
      publishTo(() => alertsTopic(alert.homeId), alert, { alertId: alert.id });
    },
    publishIncident(incident) {
      publishTo(() => incidentsTopic(incident.homeId), incident, { incidentId: incident.id });
    },
    stats: () => ({
      received,
      duplicateEvents,
      rejected: rejections.counts(),
      rejectedTotal: rejections.total(),
      clockSkew: clockSkew.counts(),
      published,
      publishFailures,
      connected: client?.connected === true && sessions.length > 0 && sessions.every((s) => s.stats().connected),
    }),
    async close() {
      const c = client;
      const subs = sessions;
      client = undefined;
      sessions = [];
      // Acknowledge what was processed and made durable before we go, so a graceful restart does
      // not make the broker redeliver it (bounded: a journal that never syncs must not block close).
      if (waitingAcks.size > 0) await Promise.race([Promise.all(waitingAcks), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
      await Promise.all(subs.map((s) => s.close()));
      rejections.close();
      clockSkew.close();
      if (c === undefined) return;
      // A clean DISCONNECT when the broker is there; never hang on one that is gone.
      await Promise.race([c.endAsync(false), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
      if (!c.disconnected) await c.endAsync(true);
    },
  };
}
