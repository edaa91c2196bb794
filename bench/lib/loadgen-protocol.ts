import type { Percentiles } from './stats.ts';

/** Messages between the benchmark runner and its load-generator child process (IPC). */

export interface DeviceRef {
  readonly id: string;
  readonly homeId: string;
}

export type LoadgenCommand =
  | {
      readonly op: 'connect';
      readonly host: string;
      readonly port: number;
      readonly devices: readonly DeviceRef[];
      readonly secret: string;
      readonly keepaliveS: number;
      /** Source addresses on loopback, round-robin (~28k ephemeral ports each). */
      readonly localAddresses: readonly string[];
      /** Connection attempts in flight at once. */
      readonly concurrency: number;
      /** Keep reconnecting devices whose connection drops (for the restart measurement). */
      readonly reconnect: boolean;
      readonly timeoutMs: number;
    }
  | { readonly op: 'subscriber'; readonly host: string; readonly port: number; readonly username?: string; readonly password?: string; readonly clientId: string; readonly filter: string; readonly qos: 0 | 1; readonly clean?: boolean }
  | {
      readonly op: 'run';
      /** Total messages/s over all devices; 0 = as fast as the window allows. */
      readonly rate: number;
      readonly warmupMs: number;
      readonly durationMs: number;
      /** After sending stops, how long to wait for outstanding deliveries and PUBACKs. */
      readonly drainMs: number;
      readonly qos: 0 | 1;
      /** Unacknowledged QoS 1 publishes per connection; for QoS 0, messages per connection per tick. */
      readonly window: number;
      /** Wait for deliveries to the subscriber (false when nothing subscribes here, e.g. ingest). */
      readonly expectDeliveries: boolean;
    }
  | { readonly op: 'waitConnected'; readonly count: number; readonly timeoutMs: number }
  | { readonly op: 'stopRun' }
  /** socket.io dashboard clients: log in as each user (POST /api/login), connect with the token. */
  | { readonly op: 'dashboards'; readonly url: string; readonly users: readonly { readonly username: string; readonly password: string }[]; readonly timeoutMs: number }
  /**
   * Publishes one message from a connected device (QoS 1) and waits until every dashboard client
   * logged in for `homeId` (plus bureau clients if `bureauToo`) has received a `raised` alert for that
   * device; returns publish → receipt latencies in ms (one per receiving client).
   */
  | { readonly op: 'trigger'; readonly deviceId: string; readonly homeId: string; readonly channel: 'telemetry' | 'event'; readonly body: Record<string, unknown>; readonly bureauToo: boolean; readonly timeoutMs: number }
  | { readonly op: 'stats' }
  | { readonly op: 'disconnect' }
  | { readonly op: 'exit' };

export interface RunResult {
  readonly sent: number;
  readonly sentInWindow: number;
  readonly sendRate: number;
  readonly acked: number;
  readonly delivered: number;
  readonly deliveredInWindow: number;
  readonly deliveredRate: number;
  /** Messages sent in the window and never delivered before the drain ended. */
  readonly missing: number;
  readonly latencyMs: Percentiles;
  /** The generator could not keep up with `rate` (ticks where it fell behind). */
  readonly behindTicks: number;
}

export interface ConnectResult {
  readonly connected: number;
  readonly failed: number;
  readonly ms: number;
  readonly firstError?: string;
}

export interface TriggerResult {
  readonly latenciesMs: number[];
  readonly expected: number;
  readonly rule?: string;
  /**
   * The first receipt's latency by stage, ms (platform clock, so ms resolution): publish → broker
   * stamp, broker → alerts process, receipt → alert raised, raised → socket.io client.
   */
  readonly stages?: { readonly toBroker: number; readonly brokerToAlerts: number; readonly toRaised: number; readonly toClient: number };
}

export interface StatsResult {
  readonly connected: number;
  readonly reconnects: number;
  readonly rssBytes: number;
}

export type LoadgenReply = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: string };
