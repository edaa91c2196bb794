import type { Registry } from 'prom-client';
import { byLabel, counterFrom, createMetricsRegistry, gaugeFrom, labelledCounterFrom, labelledGaugeFrom, type Sample } from '../common/metrics.ts';
import { INCIDENT_KINDS, type IncidentMessage } from '../contract/incidents.ts';
import { ALERT_STATES, SIGNAL_CLASSES, type AlertMessage } from '../contract/payloads.ts';
import type { JournalStats } from './persistence/journal-writer.ts';
import type { MqttAdapter } from './mqtt.ts';
import type { ChannelStats } from './notify/channel.ts';
import { RECEIPT_REJECTIONS, type ReceiptBookStats } from './notify/receipt-routes.ts';
import { SNAPSHOT_COST_FACTOR, SNAPSHOT_EVERY_MS, SNAPSHOT_MAX_EVERY_MS } from './snapshot-pace.ts';

const ATTEMPT_STATUSES = ['delivered', 'retrying', 'failed', 'cancelled'] as const;

/**
 * The alerts process's Prometheus metrics (docs/architecture.md "Metrics and health"), all read at
 * scrape time from what the process already keeps: the open alerts and incidents of the lifecycle,
 * the MQTT adapter's and journal's stats. Nothing is counted on the alarm path for them.
 */
export interface AlertsMetricSources {
  readonly openAlerts: () => readonly AlertMessage[];
  readonly openIncidents: () => readonly IncidentMessage[];
  /** Undefined before start or with MQTT off. */
  readonly mqtt: () => ReturnType<MqttAdapter['stats']> | undefined;
  readonly journal: () => JournalStats;
  readonly socketClients: () => number;
  readonly inputs: () => number;
  readonly ruleFailures: () => number;
  readonly disablementsInForce: () => number;
  /** How long the last periodic rule-state save took, cut to disk (it paces the next: alerts/snapshot-pace.ts). */
  readonly snapshotSeconds: () => number;
}

/** States an open alert or incident can be in (resolved ones leave the open set). */
const OPEN_STATES = ALERT_STATES.filter((s) => s !== 'resolved');

/** Counts per (a, b) label pair, every pair of the two vocabularies present (0 when none). */
function countBy<A extends string, B extends string>(items: Iterable<Readonly<Record<A | B, string>>>, a: A, as: readonly string[], b: B, bs: readonly string[]): Array<Sample<A | B>> {
  const counts = new Map<string, number>();
  for (const x of as) for (const y of bs) counts.set(`${x}\u0000${y}`, 0);
  for (const item of items) {
    const key = `${item[a]}\u0000${item[b]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => {
    const [x = '', y = ''] = key.split('\u0000');
    return [{ [a]: x, [b]: y } as Record<A | B, string>, n] as const;
  });
}

export function createAlertsMetrics(src: AlertsMetricSources): Registry {
  const registry = createMetricsRegistry();
  counterFrom({ registry, name: 'messages_received_total', help: 'Device messages read from the broker (signals and telemetry sessions), since start' }, () => src.mqtt()?.received ?? 0);
  counterFrom({ registry, name: 'events_duplicate_total', help: 'Device events received again (same device ts and seq, broker stamps within 10 min: a QoS 1 redelivery or re-send) and not passed to the rules twice' }, () => src.mqtt()?.duplicateEvents ?? 0);
  counterFrom({ registry, name: 'messages_published_total', help: 'Alert and incident changes published to MQTT, since start' }, () => src.mqtt()?.published ?? 0);
  labelledCounterFrom({ registry, name: 'messages_rejected_total', help: 'Device messages refused before the rules, by reason code (contract/device-message.ts)', labelNames: ['code'] }, () => byLabel('code', src.mqtt()?.rejected ?? {}));
  counterFrom({ registry, name: 'alerts_publish_failures_total', help: 'Alert or incident publications to MQTT that failed, since start' }, () => src.mqtt()?.publishFailures ?? 0);
  gaugeFrom({ registry, name: 'alerts_mqtt_connected', help: '1 while the MQTT sessions are connected' }, () => (src.mqtt()?.connected === true ? 1 : 0));
  counterFrom({ registry, name: 'alerts_inputs_total', help: 'Inputs evaluated by the rules (device messages, care actions), since start' }, src.inputs);
  counterFrom({ registry, name: 'alerts_rule_failures_total', help: 'Rule evaluations that threw (the input still reached the other rules), since start' }, src.ruleFailures);
  labelledGaugeFrom({ registry, name: 'alerts_open', help: 'Open alerts by state and signal class (alarm, supervisory, trouble, care)', labelNames: ['state', 'signal'] }, () =>
    countBy<'state', 'signal'>(src.openAlerts(), 'state', OPEN_STATES, 'signal', SIGNAL_CLASSES),
  );
  labelledGaugeFrom({ registry, name: 'incidents_open', help: 'Open incidents by state and kind (fire, care, device)', labelNames: ['state', 'kind'] }, () =>
    countBy<'state', 'kind'>(src.openIncidents(), 'state', OPEN_STATES, 'kind', INCIDENT_KINDS),
  );
  gaugeFrom({ registry, name: 'alerts_journal_pending', help: 'Alert journal records not yet stored in InfluxDB (the queue depth)' }, () => src.journal().pending);
  counterFrom({ registry, name: 'alerts_journal_write_failures_total', help: 'Failed InfluxDB writes of the alert journal (retried), since start' }, () => src.journal().failures);
  labelledCounterFrom({ registry, name: 'alerts_points_rejected_total', help: 'Alert-journal points InfluxDB refused for good (400/413), set aside in the dead-letter file, by reason (type_conflict, unparsable, too_large, rejected)', labelNames: ['reason'] }, () =>
    byLabel('reason', src.journal().rejected, ['type_conflict', 'unparsable', 'too_large', 'rejected']),
  );
  counterFrom({ registry, name: 'alerts_dead_letter_lost_total', help: 'Refused points the full dead-letter file could not keep (only in the error log), since start' }, () => src.journal().deadLetterLost);
  counterFrom({ registry, name: 'alerts_journal_io_failures_total', help: 'Failed journal file appends or syncs, since start' }, () => src.journal().ioFailures);
  gaugeFrom({ registry, name: 'alerts_socket_clients', help: 'socket.io clients connected (staff pages, bureau)' }, src.socketClients);
  gaugeFrom({ registry, name: 'alerts_snapshot_last_seconds', help: `How long the last periodic rule-state snapshot took to save; the next waits ${SNAPSHOT_COST_FACTOR}x as long, at least ${SNAPSHOT_EVERY_MS / 1000} s, at most ${SNAPSHOT_MAX_EVERY_MS / 1000} s` }, src.snapshotSeconds);
  gaugeFrom({ registry, name: 'alerts_disablements_in_force', help: 'Disablements (test or maintenance mode) in force' }, src.disablementsInForce);
  return registry;
}

/** Issue 15: what the notification channels and the delivery-receipt book keep (alerts/notify/). */
export interface NotifyMetricSources {
  /** Per channel id: its stats (channels without stats are left out). */
  readonly channels: () => ReadonlyMap<string, ChannelStats>;
  readonly receipts: () => ReceiptBookStats | undefined;
}

/**
 * Notification metrics (issue 15, audit gap 9), read at scrape time: attempts per channel and
 * outcome, delivery receipts per channel and status, refused receipts per code, and each channel's
 * rate-limit queue (length, and how long its oldest message has waited: a fire notice stuck behind
 * a flood shows here first). Every channel × outcome series exists from the start at 0.
 */
export function registerNotifyMetrics(registry: Registry, src: NotifyMetricSources): void {
  labelledCounterFrom({ registry, name: 'notify_attempts_total', help: 'Notification delivery attempts that ended, by channel and outcome (delivered, retrying, failed, cancelled), since start', labelNames: ['channel', 'outcome'] }, () =>
    [...src.channels()].flatMap(([channel, s]) => ATTEMPT_STATUSES.map((outcome) => [{ channel, outcome }, s.attempts[outcome]] as const)),
  );
  labelledCounterFrom({ registry, name: 'notify_receipts_total', help: 'Delivery receipts recorded from the SMS / voice gateways, by channel and status (delivered, failed, answered, not_answered), since start', labelNames: ['channel', 'status'] }, () =>
    [...(src.receipts()?.receipts ?? new Map<string, number>())].map(([k, n]) => {
      const [channel = '', status = ''] = k.split('\u0000');
      return [{ channel, status }, n] as const;
    }),
  );
  labelledCounterFrom({ registry, name: 'notify_receipts_rejected_total', help: 'Delivery receipts refused, by reason code (alerts/errors.ts NOTIFY_RECEIPT_*), since start', labelNames: ['code'] }, () =>
    byLabel('code', src.receipts()?.rejected ?? {}, RECEIPT_REJECTIONS),
  );
  labelledGaugeFrom({ registry, name: 'notify_queue_length', help: "Notifications waiting for the channel's rate limit now", labelNames: ['channel'] }, () =>
    [...src.channels()].map(([channel, s]) => [{ channel }, s.queued] as const),
  );
  labelledGaugeFrom({ registry, name: 'notify_queue_oldest_wait_seconds', help: "How long the oldest notification waiting for the channel's rate limit has waited (0 when none)", labelNames: ['channel'] }, () =>
    [...src.channels()].map(([channel, s]) => [{ channel }, s.oldestWaitMs / 1000] as const),
  );
}
