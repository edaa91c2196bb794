import type { Percentiles } from './stats.ts';

/** Messages between the benchmark runner and its load-generator child process (IPC). */

export interface DeviceRef {
  readonly id: string;
  readonly homeId: string;
  /** This device's own secret; without it the connect command's shared `secret` is used. */
  readonly secret?: string;
}

/**
 * Reconnect back-off of a device whose connection dropped: first attempt after U(0, initialMaxMs),
 * after the k-th failed attempt in a row U(0, min(capMs, baseMs·2^(k-1))) ("full jitter" exponential
 * back-off, as device SDKs do, so a fleet does not hit a restarted broker in lock step).
 */
export interface Backoff {
  readonly initialMaxMs: number;
  readonly baseMs: number;
  readonly capMs: number;
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
      /** Bound of the whole connect command: no new first attempt starts after it (one in progress may run up to connackTimeoutMs past it). */
      readonly timeoutMs: number;
      /**
       * How long one attempt waits for its CONNACK before it gives up and backs off, as a device SDK's
       * connect timeout does (mqtt.js: 30 s). Default: timeoutMs, so an attempt that never gets an
       * answer holds its device (and, in the connect phase, one of the `concurrency` workers) to the end.
       */
      readonly connackTimeoutMs?: number;
      /** Reconnect back-off; default: a fixed U(200, 2000) ms delay per attempt (benchmark 4). */
      readonly backoff?: Backoff;
      /**
       * Behave as a carewatch device does at CONNECT (device-sim/device.ts): a last will on its status
       * topic ({"online":false}, QoS 1, retained), and after CONNACK an online status, QoS 1, retained.
       */
      readonly deviceSession?: boolean;
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
  /** Forget reconnect timings so far (before the broker is killed). */
  | { readonly op: 'resetReconnects' }
  /** Reconnect timings since the last resetReconnects. */
  | { readonly op: 'reconnectReport' }
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
  /**
   * Receipts that came in a page's `snapshot` after it reconnected, not as a live `alert` event (as
   * the real page gets an alarm raised while its connection was down); counted in latenciesMs too.
   */
  readonly bySnapshot: number;
}

export interface StatsResult {
  readonly connected: number;
  readonly reconnects: number;
  /** socket.io reconnects of the staff pages (each ends a connection the server or the network dropped). */
  readonly pageReconnects: number;
  readonly rssBytes: number;
  /** Connection attempts waiting for their CONNACK now, and how long the oldest has waited (ms; 0 if none). */
  readonly connecting: number;
  readonly oldestAttemptMs: number;
  /** Devices waiting out a reconnect back-off now. */
  readonly backingOff: number;
  /** Connections that ended after their CONNACK (closed by the far side or the network), since start. */
  readonly dropped: number;
  /** This process's event-loop delay since the previous stats call (ms): a starved or blocked generator pings late. */
  readonly loopDelayMaxMs: number;
}

export type LoadgenReply = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: string };

export interface ReconnectReport {
  readonly connected: number;
  /** Devices that got a CONNACK again since the reset. */
  readonly reconnected: number;
  /** Epoch ms (performance.timeOrigin + now) of the last of those CONNACKs; NaN if none. */
  readonly lastConnackEpochMs: number;
  /** Per reconnected device: start of its successful attempt (TCP connect) → CONNACK, ms. */
  readonly connectLatenciesMs: number[];
  /** Connection attempts since the reset, and how many failed (refused, reset, timeout, CONNACK ≠ 0). */
  readonly attempts: number;
  readonly failedAttempts: number;
  /** Failed attempts by kind (ECONNREFUSED, ECONNRESET, CONNACK timeout, closed before CONNACK, CONNACK code …). */
  readonly failuresByKind: Readonly<Record<string, number>>;
  readonly firstError?: string;
}
