/**
 * Whether each notification channel is working (issue 15, /health): a pure tally of the delivery
 * attempts the notifier audits, with no clock read (the caller passes each attempt's time and "now").
 *
 * A channel is *failing* when its last `failures` attempts all failed and the first of that run
 * failed at least `forMs` ago. One failed attempt is ordinary (a 500 blip, a robot's rate limit)
 * and is retried; but the default retry schedule (docs/alerts.md "Delivery": 2 s doubling, 5
 * attempts) gives up on a notification within about 30 s, so a channel whose every attempt has failed
 * for 3 minutes is down, not blipping: alarms are not reaching the people away from the page, and an
 * operator must be told (the page itself still works). It stays failing until an attempt on it is
 * delivered: with no traffic there is no evidence it healed.
 */

export interface ChannelHealthOptions {
  /** Consecutive failed attempts (default 3). */
  readonly failures: number;
  /** How long the run of failures has lasted, ms (default 3 minutes). */
  readonly forMs: number;
}

export const DEFAULT_CHANNEL_HEALTH: ChannelHealthOptions = { failures: 3, forMs: 3 * 60_000 };

export interface FailingChannel {
  readonly channel: string;
  readonly consecutiveFailures: number;
  /** When the first failed attempt of the current run ended (ms). */
  readonly failingSince: number;
  readonly lastAttemptAt: number;
  /** `HTTP 500`, `errcode 93000 invalid webhook url`, `timeout after 10000 ms`. */
  readonly lastError: string;
}

export interface ChannelHealth {
  /** One delivery attempt's outcome. */
  note(channel: string, ok: boolean, at: number, error?: string): void;
  /** The channels failing now, by the rule above. */
  failing(now: number): FailingChannel[];
}

export function createChannelHealth(options: Partial<ChannelHealthOptions> = {}): ChannelHealth {
  const opts: ChannelHealthOptions = { ...DEFAULT_CHANNEL_HEALTH, ...options };
  const runs = new Map<string, { count: number; since: number; last: number; error: string }>();
  return {
    note(channel, ok, at, error) {
      if (ok) {
        runs.delete(channel);
        return;
      }
      const run = runs.get(channel);
      if (run === undefined) runs.set(channel, { count: 1, since: at, last: at, error: error ?? 'failed' });
      else runs.set(channel, { count: run.count + 1, since: run.since, last: at, error: error ?? run.error });
    },
    failing(now) {
      const out: FailingChannel[] = [];
      for (const [channel, r] of runs) {
        if (r.count >= opts.failures && now - r.since >= opts.forMs) out.push({ channel, consecutiveFailures: r.count, failingSince: r.since, lastAttemptAt: r.last, lastError: r.error });
      }
      return out.sort((a, b) => a.channel.localeCompare(b.channel));
    },
  };
}
