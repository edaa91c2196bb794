import type { Clock } from '../../common/clock.ts';
import type { Severity } from '../../contract/payloads.ts';

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
  readonly at: number;
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
}

/** What a reply means: delivered, worth another try, or a permanent failure (a wrong key will not heal). */
export type Verdict = { readonly kind: 'ok' | 'retry' | 'fail'; readonly errcode?: number; readonly detail?: string };

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

/** A token bucket on the injected clock. `reserve` takes a token now or books the next one (negative balance = a queue). */
export interface TokenBucket {
  /** Milliseconds to wait before the reserved token is due (0: now). */
  reserve(now: number): number;
}

export function createTokenBucket(ratePerMin: number, burst: number, now: number): TokenBucket {
  let tokens = burst;
  let last = now;
  const perMs = ratePerMin / 60_000;
  return {
    reserve(t) {
      tokens = Math.min(burst, tokens + Math.max(0, t - last) * perMs);
      last = Math.max(last, t);
      tokens -= 1;
      return tokens >= 0 ? 0 : Math.ceil(-tokens / perMs);
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

/** The shared delivery loop: rate limit, attempt with timeout, classify, back off, until delivered, failed, cancelled or out of attempts. */
export function createHttpChannel(deps: HttpChannelDeps): NotificationChannel {
  const policy: DeliveryPolicy = { ...DEFAULT_DELIVERY, ...deps.policy };
  const random = deps.random ?? Math.random;
  const { clock } = deps;
  const bucket = createTokenBucket(policy.ratePerMin, policy.burst, clock.now());

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
      const text = await res.text();
      const byStatus = classifyStatus(res.status);
      if (byStatus.kind !== 'ok') return { ...byStatus, httpStatus: res.status };
      return { ...(deps.classifyOk?.(text) ?? { kind: 'ok' }), httpStatus: res.status };
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
        if (!(await sleep(clock, bucket.reserve(clock.now()), signal))) return receipt({ status: 'cancelled', attempts: attempt - 1 });
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
        };
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
  };
}
