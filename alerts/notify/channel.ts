import type { Clock } from '../../common/clock.ts';
import { boundedText } from '../../common/bounded-body.ts';
import { SEVERITIES, type Severity } from '../../contract/payloads.ts';

/**
 * One interface for every way of reaching a person (issue 15) and the delivery machinery they share:
 * retries with exponential back-off and jitter, a per-channel token-bucket rate limit, a timeout
 * per attempt and a classification of each reply. Adapters (adapters.ts) only say how a
 * notification becomes an HTTP request and what a reply means.
 */

export interface Recipient {
  readonly personId: string;
  readonly name: string;
  /** What this channel sends to: a phone number, a user id… (personal channels); unused by group robots. */
  readonly address?: string;
  /** For group robots' @-mentions. */
  readonly phone?: string;
}

export interface Notification {
  /** Stable per (incident, level, channel, recipient): receivers can de-duplicate retries by it. */
  readonly id: string;
  readonly incidentId: string;
  readonly homeId: string;
  readonly severity: Severity;
  /** Ladder level that addresses these recipients (0 duty staff, 1 director, 2 bureau). */
  readonly level: number;
  readonly title: string;
  /** Chinese first, then English; full text for chat and webhooks. */
  readonly text: string;
  /** A short text for SMS / voice (one or two SMS segments). */
  readonly short: string;
  readonly link: string;
  readonly recipients: readonly Recipient[];
}

export type AttemptStatus = 'delivered' | 'retrying' | 'failed' | 'cancelled';

export interface AttemptRecord {
  readonly channelId: string;
  readonly notificationId: string;
  readonly attempt: number;
  readonly status: AttemptStatus;
  readonly httpStatus?: number;
  /** WeCom / DingTalk `errcode`. */
  readonly errcode?: number;
  readonly detail?: string;
  /** The gateway's id of the message (SMS / voice `messageIdPointer`): its delivery receipt names it. */
  readonly messageId?: string;
  readonly at: number;
}

export interface DeliveryReceipt {
  readonly channelId: string;
  readonly notificationId: string;
  readonly status: 'delivered' | 'failed' | 'cancelled';
  readonly attempts: number;
  readonly httpStatus?: number;
  readonly errcode?: number;
  readonly detail?: string;
  readonly messageId?: string;
  readonly at: number;
}

/** A channel's counters and queue, read at scrape time (alerts/metrics.ts). */
export interface ChannelStats {
  /** Attempts that ended, by outcome (AttemptStatus). */
  readonly attempts: Readonly<Record<AttemptStatus, number>>;
  /** Messages waiting for a rate-limit token now (first attempts and retries). */
  readonly queued: number;
  /** How long the oldest of them has waited (ms; 0 when none). */
  readonly oldestWaitMs: number;
}

export interface SendOptions {
  /** Aborting cancels the pending retry (and the attempt in flight). */
  readonly signal?: AbortSignal;
  /** Every attempt, as it ends: for the audit trail. */
  readonly onAttempt?: (a: AttemptRecord) => void;
}

export interface NotificationChannel {
  readonly id: string;
  /** `group`: one message per level to a chat group, @-mentioning the recipients; `personal`: one per recipient. */
  readonly audience: 'group' | 'personal';
  send(msg: Notification, opts?: SendOptions): Promise<DeliveryReceipt>;
  /** Counters and queue for /metrics (absent on channels that keep none, e.g. tests' fakes). */
  stats?(): ChannelStats;
}

/** What a reply means: delivered, worth another try, or a permanent failure (a wrong key will not heal). */
export type Verdict = { readonly kind: 'ok' | 'retry' | 'fail'; readonly errcode?: number; readonly detail?: string; readonly messageId?: string };

export interface HttpRequestSpec {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface DeliveryPolicy {
  /** Attempts in all, including the first (default 5). */
  readonly maxAttempts: number;
  /** First back-off delay (default 2 s), doubled per attempt up to maxDelayMs (default 60 s). */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Per attempt (default 10 s). */
  readonly timeoutMs: number;
  /** Token bucket: sustained rate and burst. */
  readonly ratePerMin: number;
  readonly burst: number;
}

/**
 * WeCom and DingTalk robots each accept at most 20 messages a minute (WeCom 群机器人配置说明,
 * developer.work.weixin.qq.com/document/path/91770; DingTalk 自定义机器人, open.dingtalk.com/document/robots/custom-robot-access);
 * the default bucket stays at that limit.
 */
export const DEFAULT_DELIVERY: DeliveryPolicy = { maxAttempts: 5, baseDelayMs: 2000, maxDelayMs: 60_000, timeoutMs: 10_000, ratePerMin: 20, burst: 5 };

/**
 * Exponential back-off with "equal jitter" (AWS Architecture Blog, "Exponential Backoff And
 * Jitter", 2015): half the exponential delay fixed, half random, so many channels that failed
 * together do not retry in lock-step yet a retry never comes sooner than half the nominal delay.
 */
export function backoffMs(attempt: number, policy: Pick<DeliveryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number): number {
  const nominal = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(nominal / 2 + (nominal / 2) * random());
}

/** Rank of a severity in the rate-limit queue: critical first (SEVERITIES is worst first). */
export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/**
 * The per-channel rate limit as a priority queue (issue 15, audit gap 8): a token bucket whose
 * waiting messages are served worst severity first, first come first within one severity. A FIFO
 * bucket put a fire notice behind every low-severity message already booked: 30 of them at the
 * robots' 20 a minute held a fire back about 75 s, far beyond the 10 s GB 50440 allows the
 * monitoring centre to pass an alarm on. Lower severities can wait behind a stream of critical
 * ones; that is the intended order. Nothing is dropped: every waiter is served or cancelled.
 */
export interface PriorityLimiter {
  /** Resolves true when this message may be sent, false when the signal aborted first. */
  acquire(severity: Severity, signal: AbortSignal | undefined): Promise<boolean>;
  readonly queued: number;
  /** Enqueue time of the oldest waiter (undefined when none). */
  oldestSince(): number | undefined;
  /** Releases the timer (waiters resolve false). */
  close(): void;
}

interface Waiter {
  readonly rank: number;
  readonly seq: number;
  readonly since: number;
  readonly resolve: (ok: boolean) => void;
  readonly detach: () => void;
}

export function createPriorityLimiter(clock: Clock, ratePerMin: number, burst: number): PriorityLimiter {
  const perMs = ratePerMin / 60_000;
  let tokens = burst;
  let last = clock.now();
  let seq = 0;
  const queue: Waiter[] = [];
  let timer: ReturnType<Clock['setTimeout']> | undefined;

  function refill(): void {
    const t = clock.now();
    tokens = Math.min(burst, tokens + Math.max(0, t - last) * perMs);
    last = Math.max(last, t);
  }

  function best(): number {
    let i = 0;
    for (let j = 1; j < queue.length; j++) {
      const a = queue[j]!;
      const b = queue[i]!;
      if (a.rank < b.rank || (a.rank === b.rank && a.seq < b.seq)) i = j;
    }
    return i;
  }

  function pump(): void {
    refill();
    while (queue.length > 0 && tokens >= 1) {
      const [w] = queue.splice(best(), 1);
      tokens -= 1;
      w!.detach();
      w!.resolve(true);
    }
    if (timer !== undefined) {
      clock.clearTimeout(timer);
      timer = undefined;
    }
    if (queue.length > 0) {
      timer = clock.setTimeout(() => {
        timer = undefined;
        pump();
      }, Math.max(1, Math.ceil((1 - tokens) / perMs)));
    }
  }

  return {
    acquire(severity, signal) {
      if (signal?.aborted === true) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const onAbort = (): void => {
          const i = queue.indexOf(w);
          if (i >= 0) queue.splice(i, 1);
          resolve(false);
          if (queue.length === 0 && timer !== undefined) {
            clock.clearTimeout(timer);
            timer = undefined;
          }
        };
        const w: Waiter = { rank: severityRank(severity), seq: seq++, since: clock.now(), resolve, detach: () => signal?.removeEventListener('abort', onAbort) };
        signal?.addEventListener('abort', onAbort, { once: true });
        queue.push(w);
        pump();
      });
    },
    get queued() {
      return queue.length;
    },
    oldestSince: () => (queue.length === 0 ? undefined : Math.min(...queue.map((w) => w.since))),
    close() {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      for (const w of queue.splice(0)) {
        w.detach();
        w.resolve(false);
      }
    },
  };
}

/** Waits on the clock; resolves false when the signal aborts first. */
function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted === true) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      resolve(false);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface HttpChannelDeps {
  readonly id: string;
  readonly audience: 'group' | 'personal';
  readonly clock: Clock;
  readonly policy?: Partial<DeliveryPolicy>;
  readonly random?: () => number;
  /** The request for one attempt (signatures carry the attempt's time). */
  readonly request: (msg: Notification, now: number) => HttpRequestSpec;
  /** The meaning of a 2xx reply's body (robots answer 200 with `errcode` ≠ 0 on failure). */
  readonly classifyOk?: (body: string) => Verdict;
}

/** HTTP status → verdict: 408, 425, 429 and 5xx are worth retrying; other 4xx are the request's fault. */
export function classifyStatus(status: number): Verdict {
  if (status >= 200 && status < 300) return { kind: 'ok' };
  if (status === 408 || status === 425 || status === 429 || status >= 500) return { kind: 'retry', detail: `HTTP ${status}` };
  return { kind: 'fail', detail: `HTTP ${status}` };
}

/** A gateway's answer read at most: theirs are a few hundred bytes of JSON. */
const MAX_GATEWAY_ANSWER_BYTES = 64 * 1024;

/** The shared delivery loop: rate limit, attempt with timeout, classify, back off, until delivered, failed, cancelled or out of attempts. */
export function createHttpChannel(deps: HttpChannelDeps): NotificationChannel {
  const policy: DeliveryPolicy = { ...DEFAULT_DELIVERY, ...deps.policy };
  const random = deps.random ?? Math.random;
  const { clock } = deps;
  const limiter = createPriorityLimiter(clock, policy.ratePerMin, policy.burst);
  const attemptCounts: Record<AttemptStatus, number> = { delivered: 0, retrying: 0, failed: 0, cancelled: 0 };

  async function attemptOnce(msg: Notification, signal: AbortSignal | undefined): Promise<Verdict & { httpStatus?: number }> {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = clock.setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, policy.timeoutMs);
    try {
      const req = deps.request(msg, clock.now());
      // No redirects: a 3xx is the endpoint's misconfiguration (a permanent failure), and following one
      // would send the signed alarm, with its residents' names, somewhere nobody configured.
      const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal: ac.signal, redirect: 'manual' });
      const byStatus = classifyStatus(res.status);
      // Only a gateway that says in a 2xx body whether it took the message (classifyOk) is read, and
      // no more than a gateway's answer can be: a body that never ends was buffered until the timeout.
      if (byStatus.kind !== 'ok' || deps.classifyOk === undefined) {
        await res.body?.cancel().catch(() => undefined);
        return { ...byStatus, httpStatus: res.status };
      }
      const text = await boundedText(res, MAX_GATEWAY_ANSWER_BYTES);
      if (text === undefined) return { kind: 'retry', detail: `answer over ${MAX_GATEWAY_ANSWER_BYTES} bytes`, httpStatus: res.status };
      return { ...deps.classifyOk(text), httpStatus: res.status };
    } catch (err) {
      if (timedOut) return { kind: 'retry', detail: `timeout after ${policy.timeoutMs} ms` };
      if (signal?.aborted === true) return { kind: 'fail', detail: 'cancelled' };
      return { kind: 'retry', detail: `network: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`.slice(0, 200) };
    } finally {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  return {
    id: deps.id,
    audience: deps.audience,
    async send(msg, opts = {}) {
      const { signal, onAttempt } = opts;
      const receipt = (r: Omit<DeliveryReceipt, 'channelId' | 'notificationId' | 'at'>): DeliveryReceipt => ({ channelId: deps.id, notificationId: msg.id, at: clock.now(), ...r });
      for (let attempt = 1; ; attempt++) {
        if (!(await limiter.acquire(msg.severity, signal))) return receipt({ status: 'cancelled', attempts: attempt - 1 });
        const v = await attemptOnce(msg, signal);
        const cancelled = signal?.aborted === true && v.kind !== 'ok';
        const last = v.kind === 'fail' || attempt >= policy.maxAttempts;
        const status: AttemptStatus = v.kind === 'ok' ? 'delivered' : cancelled ? 'cancelled' : last ? 'failed' : 'retrying';
        const rec: AttemptRecord = {
          channelId: deps.id,
          notificationId: msg.id,
          attempt,
          status,
          at: clock.now(),
          ...(v.httpStatus !== undefined ? { httpStatus: v.httpStatus } : {}),
          ...(v.errcode !== undefined ? { errcode: v.errcode } : {}),
          ...(v.detail !== undefined ? { detail: v.detail } : {}),
          ...(v.messageId !== undefined ? { messageId: v.messageId } : {}),
        };
        attemptCounts[status]++;
        try {
          onAttempt?.(rec);
        } catch {
          // The audit sink's failure must not stop the delivery; the notifier logs its own.
        }
        const { channelId: _c, notificationId: _n, at: _a, attempt: _t, status: _s, ...facts } = rec;
        if (status === 'delivered' || status === 'failed' || status === 'cancelled') return receipt({ ...facts, status, attempts: attempt });
        if (!(await sleep(clock, backoffMs(attempt, policy, random), signal))) return receipt({ ...facts, status: 'cancelled', attempts: attempt });
      }
    },
    stats() {
      const since = limiter.oldestSince();
      return { attempts: { ...attemptCounts }, queued: limiter.queued, oldestWaitMs: since === undefined ? 0 : Math.max(0, clock.now() - since) };
    },
  };
}
