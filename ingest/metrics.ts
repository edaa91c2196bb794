import { Histogram, type Registry } from 'prom-client';
import { METRIC_PREFIX, byLabel, counterFrom, createMetricsRegistry, gaugeFrom, labelledCounterFrom } from '../common/metrics.ts';
import type { WriteOutcome } from './influx-writer.ts';
import type { IngestStats } from './ingest.ts';

/**
 * Ingest's Prometheus metrics (docs/architecture.md "Metrics and health"). Everything but the write
 * latency is read from stats() at scrape time; the latency is observed once per InfluxDB request
 * (a batch of up to 5,000 points), never per message.
 */
export interface IngestMetrics {
  readonly registry: Registry;
  /** For the influx writer's `timeWrite`. */
  timeWrite(): (outcome: WriteOutcome) => void;
}

export function createIngestMetrics(stats: () => IngestStats, now: () => number): IngestMetrics {
  const registry = createMetricsRegistry();
  counterFrom({ registry, name: 'messages_received_total', help: 'Device messages read from the broker, since start' }, () => stats().received);
  counterFrom({ registry, name: 'ingest_messages_acked_total', help: 'Messages acknowledged (PUBACK) after they were fsynced in the spool, since start' }, () => stats().acked);
  labelledCounterFrom({ registry, name: 'messages_rejected_total', help: 'Messages (or single metrics of a reading) refused, by reason code (contract/device-message.ts, INFLUX_REJECTED), stored as `rejected`', labelNames: ['code'] }, () =>
    byLabel('code', stats().rejected),
  );
  labelledCounterFrom({ registry, name: 'ingest_out_of_range_total', help: 'Out-of-range readings stored with their flag, by metric (docs/protocol.md)', labelNames: ['metric'] }, () => byLabel('metric', stats().outOfRange));
  counterFrom({ registry, name: 'ingest_points_written_total', help: 'Points InfluxDB accepted (readings, events, statuses, rejections), since start' }, () => stats().written);
  counterFrom({ registry, name: 'ingest_write_batches_total', help: 'Spool batches stored in InfluxDB (the checkpoint advanced past them), since start' }, () => stats().influx.batches);
  counterFrom({ registry, name: 'ingest_write_failures_total', help: 'InfluxDB write attempts that failed and will be retried, since start' }, () => stats().influx.failures);
  gaugeFrom({ registry, name: 'ingest_influx_failing_seconds', help: 'How long InfluxDB writes have been failing (0 when they succeed)' }, () => {
    const since = stats().influx.failingSince;
    return since === null ? 0 : Math.max(0, now() - since) / 1000;
  });
  gaugeFrom({ registry, name: 'ingest_spool_bytes', help: 'Spool bytes received but not yet stored in InfluxDB (the spool depth)' }, () => stats().spool.bytes);
  gaugeFrom({ registry, name: 'ingest_spool_segments', help: 'Spool segment files on disk' }, () => stats().spool.segments);
  gaugeFrom({ registry, name: 'ingest_mqtt_connected', help: '1 while connected to the broker' }, () => (stats().mqtt.connected ? 1 : 0));
  gaugeFrom({ registry, name: 'ingest_mqtt_paused', help: '1 while reading from the broker is paused because the spool is full (backpressure)' }, () => (stats().mqtt.paused ? 1 : 0));
  const latency = new Histogram<'outcome'>({
    name: `${METRIC_PREFIX}ingest_write_duration_seconds`,
    help: 'InfluxDB write request latency, by outcome (ok, rejected, too-large, retry)',
    labelNames: ['outcome'],
    // A healthy batch takes milliseconds; the top bucket is the request timeout (common/influx/writer.ts, 30 s).
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return {
    registry,
    timeWrite() {
      const end = latency.startTimer();
      return (outcome) => {
        end({ outcome });
      };
    },
  };
}

/** /healthz problems of ingest: the same rule as its /health (InfluxDB writes failing too long). */
export function ingestProblems(s: IngestStats, now: number, influxUnhealthyMs: number): string[] {
  if (s.influx.failingSince === null || now - s.influx.failingSince < influxUnhealthyMs) return [];
  // Disk full needs an operator now: room, and a restart of InfluxDB 1.x (INFLUX_DISK_FULL).
  return s.influx.diskFull ? ['INGEST_INFLUX_UNAVAILABLE', 'INGEST_INFLUX_DISK_FULL'] : ['INGEST_INFLUX_UNAVAILABLE'];
}
