import { FILTERS } from '../../contract/topics.ts';
import { BENCH_DEVICE_SECRET, BENCH_SERVICE_SECRET, BENCH_SUBSCRIBER } from './registry.ts';
import { startLoadgen } from './loadgen.ts';
import { startBroker } from './services.ts';
import { CpuMeter } from './proc.ts';
import type { DeviceRef, LoadgenCommand } from './loadgen-protocol.ts';

/**
 * Benchmark 2's like-for-like reference: the broker relay alone (devices → broker → one clean QoS 1
 * subscriber in the load generator), driven by the same OPEN-LOOP stepped procedure as the pipeline:
 * same broker build and registry, same devices, same per-step load settings (`stepLoad`), same rates
 * and step duration. At a fixed rate each device has about one message outstanding, so every
 * message costs the broker its own read and PUBACK write, as in the pipeline; benchmark 1's
 * closed-loop saturation (100 in flight per device) lets both sides batch many packets per syscall.
 */

/** The load generator's run settings for one step at `rate`, shared by the pipeline's steps and the relay's. */
export function stepLoad(rate: number, stepMs: number): Omit<Extract<LoadgenCommand, { op: 'run' }>, 'op' | 'expectDeliveries'> {
  return { rate, warmupMs: Math.min(1_000, stepMs / 4), durationMs: stepMs, drainMs: 5_000, qos: 1, window: 100 };
}

/** The device connection settings shared by the pipeline and the stepped relay. */
export function deviceConnect(port: number, devices: readonly DeviceRef[]): Omit<Extract<LoadgenCommand, { op: 'connect' }>, 'op'> {
  return { host: '127.0.0.1', port, devices, secret: BENCH_DEVICE_SECRET, keepaliveS: 60, localAddresses: [], concurrency: 50, reconnect: false, timeoutMs: 120_000 };
}

/** What a step of either stepped procedure reports. */
export interface SteppedResult {
  readonly rate: number;
  readonly cores: Record<string, number>;
  readonly pass: boolean;
  readonly why: string;
}

/**
 * Runs `step` at each rate in turn and stops at the first that fails; the maximum is the highest
 * passing step. The one procedure both the pipeline and its relay reference are measured by.
 */
export async function climbSteps<T extends SteppedResult>(rates: readonly number[], step: (rate: number) => Promise<T>, log: (m: string) => void, what: string): Promise<{ steps: T[]; max: number; cores: Record<string, number> }> {
  const steps: T[] = [];
  for (const rate of rates) {
    log(`ingest: ${what}step ${rate} msg/s`);
    const st = await step(rate);
    steps.push(st);
    if (!st.pass) {
      log(`ingest: ${what}${rate} msg/s not sustained: ${st.why}`);
      break;
    }
  }
  const last = steps.filter((x) => x.pass).at(-1);
  return { steps, max: last?.rate ?? 0, cores: last?.cores ?? {} };
}

export interface RelayStepResult {
  readonly rate: number;
  readonly sendRate: number;
  /** Every publish of the step, warm-up included. */
  readonly sent: number;
  readonly acked: number;
  /** Received by the subscriber by the end of the 5 s drain (warm-up included). */
  readonly delivered: number;
  /** Messages of the measured window not received by the end of the drain. */
  readonly missing: number;
  /** Time from the end of sending until everything was PUBACKed and delivered (or the 5 s drain ran out). */
  readonly settleMs: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly cores: Record<string, number>;
  readonly pass: boolean;
  readonly why: string;
}

/** The relay's steps, its highest passing step (0 if the first failed) and the cores there. */
export type RelaySteps = Awaited<ReturnType<typeof climbSteps<RelayStepResult>>>;

/**
 * Starts a fresh broker on `registryPath`, connects `devices` and one clean QoS 1 subscriber, and
 * steps through `rates` (stopping at the first failing step). A step passes when the generator
 * reached ≥ 95 % of the rate, every publish was PUBACKed, and the subscriber received every message
 * sent in the step (warm-up included) within the 5 s drain.
 */
export async function findRelaySustained(o: {
  registryPath: string;
  devices: readonly DeviceRef[];
  rates: readonly number[];
  stepMs: number;
  log: (m: string) => void;
  /** Another broker on the same procedure (Mosquitto, benchmark `durable`); ours by default. */
  start?: () => Promise<{ port: number; child: { pid: number | undefined }; close(): Promise<void> }>;
}): Promise<RelaySteps> {
  const broker = await (o.start ?? (() => startBroker(o.registryPath)))();
  try {
    const lg = await startLoadgen();
    try {
      const con = await lg.connect(deviceConnect(broker.port, o.devices));
      if (con.connected < o.devices.length) throw new Error(`relay steps: only ${con.connected}/${o.devices.length} devices connected: ${con.firstError ?? ''}`);
      await lg.subscriber({ host: '127.0.0.1', port: broker.port, clientId: `${BENCH_SUBSCRIBER}-relay-steps`, username: BENCH_SUBSCRIBER, password: BENCH_SERVICE_SECRET, filter: FILTERS.telemetry, qos: 1, clean: true });
      const pids = { broker: broker.child.pid, loadgen: lg.child.pid };
      return await climbSteps(
        o.rates,
        async (rate) => {
          const load = stepLoad(rate, o.stepMs);
          const meter = new CpuMeter(pids);
          meter.begin();
          const t0 = performance.now();
          const r = await lg.run({ ...load, expectDeliveries: true });
          const elapsed = performance.now() - t0;
          const cores = meter.end();
          // `missing` counts only the measured window's messages (warm-up excluded), so also require
          // delivered ≥ sent: a backlog still queued when the drain ran out fails the step either way.
          const undelivered = r.sent - r.delivered;
          const why: string[] = [];
          if (r.sendRate < rate * 0.95) why.push(`generator reached ${Math.round(r.sendRate)}/s`);
          if (r.acked < r.sent) why.push(`${r.sent - r.acked} publishes not PUBACKed`);
          if (undelivered > 0 || r.missing > 0) why.push(`${Math.max(undelivered, r.missing)} not delivered within 5 s (${r.missing} of the measured window)`);
          return {
            rate,
            sendRate: r.sendRate,
            sent: r.sent,
            acked: r.acked,
            delivered: r.delivered,
            missing: r.missing,
            settleMs: Math.max(0, elapsed - load.warmupMs - load.durationMs),
            latencyP50Ms: r.latencyMs.p50,
            latencyP99Ms: r.latencyMs.p99,
            cores,
            pass: why.length === 0,
            why: why.join('; '),
          };
        },
        o.log,
        'relay ',
      );
    } finally {
      await lg.close();
    }
  } finally {
    await broker.close();
  }
}
