import type { Registry } from 'prom-client';
import { byLabel, counterFrom, createMetricsRegistry, gaugeFrom, labelledCounterFrom } from '../common/metrics.ts';
import { REFUSAL_CODES } from './policy.ts';
import type { BrokerStats } from './broker.ts';

/**
 * The broker's Prometheus metrics, read from stats() at scrape time: the MQTT paths do nothing
 * for them beyond the counters stats() already keeps (docs/architecture.md "Metrics and health").
 */
export function createBrokerMetrics(stats: () => BrokerStats): Registry {
  const registry = createMetricsRegistry();
  counterFrom({ registry, name: 'messages_received_total', help: 'PUBLISH packets accepted from clients (devices, services) and wills published, since start' }, () => stats().messagesIn);
  counterFrom({ registry, name: 'messages_published_total', help: 'Messages delivered to subscribers (one per subscriber), since start' }, () => stats().messagesOut);
  labelledCounterFrom({ registry, name: 'messages_rejected_total', help: 'Refused connections, publications, subscriptions and deliveries by reason code (broker/policy.ts REFUSAL_CODES)', labelNames: ['code'] }, () =>
    byLabel('code', stats().refusals, REFUSAL_CODES),
  );
  gaugeFrom({ registry, name: 'broker_clients_connected', help: 'MQTT clients connected now' }, () => stats().connectedClients);
  gaugeFrom({ registry, name: 'broker_queue_messages', help: "Messages waiting in aedes' delivery queue (mqemitter, beyond its concurrency)" }, () => stats().queuedMessages);
  gaugeFrom({ registry, name: 'broker_subscriber_buffered_bytes', help: "Bytes of messages issued to subscribers' connections and not yet taken by them (a subscriber past limits.subscriberBufferBytes is dropped)" }, () => stats().subscriberBufferedBytes);
  counterFrom({ registry, name: 'broker_subscriber_grace_expiries_total', help: "Times a subscriber's socket stayed full past limits.subscriberGraceMs and the publishes waiting on it were released (a service falling behind its messages, before any drop), since start" }, () => stats().subscriberGraceExpiries);
  counterFrom({ registry, name: 'broker_session_queue_dropped_total', help: 'QoS 1 readings not queued for a persistent session whose queue was at limits.sessionQueueMaxBytes (a service that far behind: a gap in what it stores, less any it had live while connected; events and statuses are always queued), since start' }, () => stats().sessionQueue.dropped);
  gaugeFrom({ registry, name: 'broker_session_queue_bytes_max', help: "The largest persistent session's queue now, in accounted bytes (payload, topic and 664 B a message); readings stop being queued for a session at limits.sessionQueueMaxBytes" }, () => stats().sessionQueue.largestBytes);
  counterFrom({ registry, name: 'broker_offline_statuses_total', help: 'Offline statuses the broker published for devices that left, since start' }, () => stats().offlinePublished);
  counterFrom({ registry, name: 'broker_keepalive_timeouts_total', help: 'Connections closed because the client sent nothing for 1.5 × its keepalive (MQTT-3.1.2-24), since start' }, () => stats().keepaliveTimeouts);
  counterFrom({ registry, name: 'broker_wills_total', help: 'Device wills published, since start' }, () => stats().willsPublished);
  counterFrom({ registry, name: 'broker_cluster_wills_deferred_total', help: "Wills of nodes this cluster node heard no heartbeat from that still kept their proof of life in Redis (this node missed their heartbeats: its pub/sub down or behind); not published, since start" }, () => stats().willsDeferred);
  counterFrom({ registry, name: 'broker_cluster_queue_heads_stranded_total', help: "Persistent sessions closed here to reconnect for a stranded queue head (not acknowledged while later messages were, queued by a node now dead), since start" }, () => stats().queueHeadsStranded);
  counterFrom({ registry, name: 'broker_client_errors_total', help: 'Connections closed on a protocol or socket error, since start' }, () => stats().clientErrors);
  counterFrom({ registry, name: 'broker_slow_subscribers_dropped_total', help: 'Subscribers closed for taking nothing for the drain timeout or falling past their buffer bound, since start' }, () => stats().slowSubscribersDropped);
  counterFrom({ registry, name: 'broker_auth_failures_total', help: 'Wrong passwords and unknown accounts, since start' }, () => stats().authThrottle.failures);
  // A cluster node (redis-mq.ts): what its Redis subscriptions bring in. A node holding only devices
  // receives their commands, not the cluster's telemetry; 0 on a single broker.
  counterFrom({ registry, name: 'broker_cluster_messages_from_redis_total', help: "Messages (not aedes' $SYS traffic) this cluster node received from Redis pub/sub, since start" }, () => stats().clusterFanout?.received ?? 0);
  counterFrom({ registry, name: 'broker_cluster_messages_malformed_total', help: 'Messages on the Redis pub/sub channels this cluster node holds that were not a message aedes could deliver (not msgpack, no topic, a payload neither bytes nor text), dropped, and throws of local listeners on a message (one per listener), since start' }, () => stats().clusterFanout?.malformed ?? 0);
  gaugeFrom({ registry, name: 'broker_cluster_fanout_all', help: "This cluster node subscribes to every message in Redis (1: more distinct wildcard filters are subscribed here than it holds Redis patterns for) or only to what its clients' filters match (0)" }, () => (stats().clusterFanout?.mode === 'all' ? 1 : 0));
  gaugeFrom({ registry, name: 'broker_cluster_fanout_patterns', help: "Redis patterns this cluster node holds for its clients' wildcard filters (a service connected here; 0 in exact or all mode)" }, () => stats().clusterFanout?.patterns ?? 0);
  // A cluster node whose Redis pub/sub connection came back after a loss (pubsub-resync.ts): what was
  // published meanwhile reached its persistent sessions only through the reconnects these count.
  counterFrom({ registry, name: 'broker_cluster_pubsub_resyncs_total', help: "Times this cluster node's Redis pub/sub subscriber connection came back after being lost (messages published meanwhile missed this node; its persistent sessions were closed to receive them from their queues), since start" }, () => stats().pubsubResync?.resyncs ?? 0);
  counterFrom({ registry, name: 'broker_cluster_resync_sessions_closed_total', help: 'Persistent-session connections this cluster node closed after its Redis pub/sub connection came back, so they reconnect and receive what was queued meanwhile, since start' }, () => stats().pubsubResync?.sessionsClosed ?? 0);
  // One per CONNECT whose password was checked: a reconnect storm should cost one HMAC per device (issue 12).
  labelledCounterFrom({ registry, name: 'broker_password_verifications_total', help: 'Password hashes computed for CONNECTs by algorithm (hmac: machine secrets; scrypt: older registries, cached), since start', labelNames: ['algorithm'] }, () =>
    byLabel('algorithm', stats().hashComputations),
  );
  return registry;
}

/** /healthz problems of the broker: it is healthy while it listens. */
export function brokerProblems(s: { readonly listening: boolean }): string[] {
  return s.listening ? [] : ['BROKER_NOT_LISTENING'];
}
