import { afterAll, beforeAll, expect, it } from 'vitest';
import { defaultRules } from '../../../alerts/rules/index.ts';
import { until } from '../support/harness.ts';
import { wallClock } from '../support/wall-clock.ts';
import { H01_ROSTER, rosterRegistry, startPagingAlerts } from './fixtures.ts';
import { startReceiver, type Receiver } from './receiver.ts';

/**
 * The notifier's repeats when the wall clock steps back (NTP, an operator) while a call goes
 * unanswered: its timers run on elapsed time, its repeat marks are wall-clock times. Until session
 * 23 a repeat timer that fired before its mark on the stepped-back clock was armed again for the
 * rest of the step: a 1 h step silenced the bureau's 2-minute repeats of an unanswered call for an
 * hour (a helper's hunt, session 22; the book's own ladder had the same fault, fixed then).
 */
const registry = rosterRegistry([H01_ROSTER]);
let duty: Receiver;
const running: Array<{ close(): Promise<void> }> = [];
beforeAll(async () => {
  duty = await startReceiver();
});
afterAll(async () => {
  for (const a of running) await a.close();
  await duty.close();
});

it('an unanswered call keeps repeating every 2 minutes after a 1 h backward step of the wall clock', async () => {
  // Thursday 09:00 China time: the day shift on duty all along.
  const clock = wallClock(Date.UTC(2026, 0, 1, 1, 0));
  const run = await startPagingAlerts({ name: 'clock_step_repeat', registry, rules: defaultRules(), clock, channels: { duty: `${duty.url}/duty` }, levels: [[0, 'duty']] });
  running.push(run);
  const a = run.alerts;
  const device = registry.device('h01-nc-f1-bath');
  if (device === undefined) throw new Error('no h01-nc-f1-bath');
  const now = clock.now();
  a.handleInput({ type: 'event', now, device, ts: now, receivedTs: now, event: { ts: now, seq: 1, type: 'sos_button' } as never });
  const inc = await until(() => a.lifecycle.openIncidents().find((i) => i.kind === 'care'), 'the call incident');
  const pagesOf = (): number => duty.requests.filter((r) => r.body.includes(inc.id)).length;
  // Up the ladder to the bureau, which has no route here: the duty staff's level, the highest routed
  // one below it, is repeated for as long as nobody answers.
  await until(() => {
    clock.advance(5_000);
    return (a.lifecycle.incident(inc.id)?.escalationLevel ?? 0) >= 2 || undefined;
  }, 'the call at the bureau');
  clock.advance(1_000);
  const settle = async (): Promise<number> => {
    let n = -1;
    while (n !== pagesOf()) {
      n = pagesOf();
      await new Promise((r) => setTimeout(r, 100));
    }
    return n;
  };
  const before = await settle();
  clock.step(-3_600_000);
  // Three minutes of real time, nobody answers: at least one repeat (every 120 s) goes out.
  for (let i = 0; i < 18; i++) {
    clock.advance(10_000);
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(await settle()).toBeGreaterThan(before);
});
