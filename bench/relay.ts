import { FILTERS } from '../contract/topics.ts';
import { BENCH_DEVICE_SECRET, BENCH_SERVICE_SECRET, BENCH_SUBSCRIBER, benchRegistry } from './lib/registry.ts';
import { startLoadgen } from './lib/loadgen.ts';
import { startMosquitto } from './lib/processes.ts';
import { startBroker } from './lib/services.ts';
import { CpuMeter } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import type { BenchContext, BenchResult, Benchmark, Row } from './lib/context.ts';
import type { RunResult } from './lib/loadgen-protocol.ts';

/**
 * 1. Broker relay: N publishers → broker → one subscriber (all in the load-generator process, so
 * one clock measures publish → deliver), QoS 0 and 1. Two phases per broker and QoS:
 *  - saturation: every publisher keeps `window` messages outstanding; delivered msgs/s is the
 *    relay's capacity on this machine (bounded by the broker's CPU, or the generator's: see cores);
 *  - fixed rate: latency p50/p99 at a rate both brokers carry comfortably.
 */
export interface RelayMeasurement {
  readonly broker: 'carewatch' | 'mosquitto';
  readonly qos: 0 | 1;
  readonly saturation: RunResult;
  readonly fixedRate: RunResult;
  readonly brokerCores: number;
  readonly loadgenCores: number;
}

export interface RelayOptions {
  readonly publishers: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly latencyRate: number;
  readonly window: number;
}

export function relayOptions(ctx: BenchContext): RelayOptions {
  return ctx.quick
    ? { publishers: 20, warmupMs: 500, durationMs: 2_000, latencyRate: 2_000, window: 16 }
    : { publishers: 100, warmupMs: 2_000, durationMs: 10_000, latencyRate: 5_000, window: 16 };
}

/** Measures one broker (already running on `port`, with pid) at one QoS. Exported for benchmark 2's reference. */
export async function measureRelay(port: number, brokerPid: number, broker: RelayMeasurement['broker'], qos: 0 | 1, o: RelayOptions, registryDevices: readonly { id: string; homeId: string }[]): Promise<RelayMeasurement> {
  const lg = await startLoadgen();
  try {
    const con = await lg.connect({ host: '127.0.0.1', port, devices: registryDevices.slice(0, o.publishers), secret: BENCH_DEVICE_SECRET, keepaliveS: 60, localAddresses: [], concurrency: 20, reconnect: false, timeoutMs: 60_000 });
    if (con.connected < o.publishers) throw new Error(`${broker}: only ${con.connected}/${o.publishers} publishers connected (${con.firstError ?? ''})`);
    await lg.subscriber({ host: '127.0.0.1', port, clientId: `${BENCH_SUBSCRIBER}-relay`, username: BENCH_SUBSCRIBER, password: BENCH_SERVICE_SECRET, filter: FILTERS.telemetry, qos });
    const meter = new CpuMeter({ broker: brokerPid, loadgen: lg.child.pid });
    meter.begin();
    const saturation = await lg.run({ rate: 0, warmupMs: o.warmupMs, durationMs: o.durationMs, drainMs: 10_000, qos, window: o.window, expectDeliveries: true });
    const cpu = meter.end();
    const fixedRate = await lg.run({ rate: o.latencyRate, warmupMs: o.warmupMs, durationMs: o.durationMs, drainMs: 10_000, qos, window: 1_000, expectDeliveries: true });
    return { broker, qos, saturation, fixedRate, brokerCores: cpu.broker ?? Number.NaN, loadgenCores: cpu.loadgen ?? Number.NaN };
  } finally {
    await lg.close();
  }
}

export const relayBenchmark: Benchmark = {
  name: 'relay',
  title: 'Broker relay: N publishers → broker → 1 subscriber',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const o = relayOptions(ctx);
    const reg = benchRegistry(ctx.root, ctx.quick ? 2_000 : 10_000, ctx.quick ? 20 : 100);
    const all: RelayMeasurement[] = [];
    for (let r = 0; r < ctx.runs; r++) {
      for (const which of ['carewatch', 'mosquitto'] as const) {
        const srv = which === 'carewatch' ? await startBroker(reg.path) : await startMosquitto();
        try {
          for (const qos of [0, 1] as const) {
            ctx.log(`relay run ${r + 1}/${ctx.runs} ${which} QoS ${qos}`);
            all.push(await measureRelay(srv.port, srv.child.pid, which, qos, o, reg.loadDevices));
          }
        } finally {
          await srv.close();
        }
      }
    }
    const rows: Row[] = [];
    for (const qos of [0, 1] as const) {
      const pick = (b: RelayMeasurement['broker'], f: (m: RelayMeasurement) => number): number => median(all.filter((m) => m.broker === b && m.qos === qos).map(f));
      const metrics: Array<[string, string, (m: RelayMeasurement) => number, boolean]> = [
        ['delivered msgs/s (saturation)', 'msg/s', (m) => m.saturation.deliveredRate, true],
        [`latency p50 @ ${o.latencyRate}/s`, 'ms', (m) => m.fixedRate.latencyMs.p50, false],
        [`latency p99 @ ${o.latencyRate}/s`, 'ms', (m) => m.fixedRate.latencyMs.p99, false],
        ['latency p99 (saturation)', 'ms', (m) => m.saturation.latencyMs.p99, false],
        ['broker CPU (saturation)', 'cores', (m) => m.brokerCores, false],
        ['load generator CPU (saturation)', 'cores', (m) => m.loadgenCores, false],
        ['missing msgs (saturation)', 'msgs', (m) => m.saturation.missing, false],
      ];
      for (const [metric, unit, f] of metrics) {
        const ours = pick('carewatch', f);
        const ref = pick('mosquitto', f);
        rows.push({ bench: 'relay', metric: `QoS ${qos} ${metric}`, value: ours, unit, reference: { name: 'mosquitto', value: ref }, ratio: ours / ref });
      }
    }
    return { rows, detail: { options: o, publishers: o.publishers, measurements: all } };
  },
};
