import { DEVICE_KINDS } from '../../../contract/device-kinds.ts';
import type { Device } from '../../../contract/registry.ts';
import type { RegistryIndex } from '../../../contract/registry-index.ts';
import type { Rule, RuleContext, RuleResult, Signal } from '../types.ts';
import { newLatch, stepLatch, type Latch } from './latch.ts';
import { recentInterval } from './cadence.ts';
import { troubleSignal } from './signals.ts';

/**
 * Supervision of communication (NFPA 72 §23.16.2: loss of a low-power radio device reported as
 * trouble within 200 s; §12.6 / §10.6.9 monitoring for integrity), for every device kind:
 *
 * - per device `device_offline:<id>` (trouble): the device sent nothing within its kind's
 *   `heartbeatBudgetS` (contract/device-kinds.ts), or reported `online: false` (raised after a
 *   10 s grace so a burst of offline statuses can be recognised as a whole home going down);
 * - per home `home_comm_loss:<home>` (trouble, critical): at least 80 % of the home's devices are
 *   down at once (its gateway or network died). While it is active, per-device offline troubles of
 *   that home are not raised, and those already raised are cleared (the home alert stands for them);
 *   when it clears, every device of the home gets a fresh heartbeat budget, and those still silent
 *   after it are raised one by one.
 *
 * A device counts as "down" for the home check once it has missed two reports (2 × telemetry
 * interval, or 2.5 of its own recent intervals when it reports more slowly) — earlier than its heartbeat budget — so a home-wide loss is recognised before the
 * per-device budgets run out. Slow reporters not yet heard since the silence began and not yet
 * quiet for two periods are left out of the fraction (undecided), so a home's 60 s call buttons do
 * not hold back the recognition that its 5–10 s detectors and monitors have all gone quiet. While ≥ 50 % of a home is down but not yet 80 %, per-device troubles
 * are held back for up to 60 s (never past NFPA 72's 200 s) to let the home picture settle.
 *
 * All times are the engine's clock (`input.now`): device clocks may be skewed; silence is about
 * when messages arrived. State per device is five numbers, and a sixth (a fresh budget) after its
 * home's communication is restored, until the entry is next rewritten.
 *
 * Alerts' own backlog is not the devices' silence. When alerts falls behind, each device's messages
 * reach the rule further apart than the broker received them, and a device reporting every 60 s
 * looked silent (session 9: 388 → 1,169 false troubles at 100,000 devices). So every message's input
 * lag (engine clock less the broker's receive stamp) is compared with the lowest lag of the last
 * 5–10 minutes (transport and clock skew between broker and alerts), and the excess is how far behind
 * alerts is: a message is recorded as seen that much earlier, and a tick judges as of its clock less
 * the largest excess since the last tick (falling no faster than time passes, so a drained backlog
 * does not let a tick judge past what it has read). At most 120 s: further behind, silence is judged
 * by arrival again. Without broker stamps (inputs without `brokerTs`) nothing changes.
 */
export interface SupervisionState {
  /**
   * Per device `[lastSeen, offlineSince | -1, raised 0|1, backSince | -1, interval, budgetFrom?]`,
   * platform ms; `interval` is the device's own recent reporting interval (absent in states saved
   * before it; 0 unknown); `budgetFrom` a fresh silence budget given after its last message (the
   * home's communication restored), until the entry is next rewritten (it speaks, is raised, or the
   * home is lost again).
   */
  d: Record<string, Entry>;
  /** Per home comm-loss latch. */
  h: Record<string, Latch>;
  /** Platform ms of the last evaluation, -1 before the first. */
  last: number;
  /** How far behind the broker the inputs are (absent before the first stamped input, and in older states). */
  lag?: Lag;
}

interface Lag {
  /** Largest excess lag (ms) of a message since the last tick. */
  x: number;
  /** The excess the last tick judged with, and that tick's platform ms. */
  j: number;
  t: number;
  /** Lowest input lag of the previous and of the current window, and when the current began. */
  b: [number, number, number];
  /**
   * How far alerts has read: the latest message's time as the broker had it, on the engine's clock
   * (its `now` less its excess). Absent in older states.
   */
  r?: number;
}

/** The baseline is the lowest input lag of the last one or two of these windows. */
const LAG_WINDOW_MS = 5 * 60_000;
/** Further behind than this, silence is judged by arrival again (alerts cannot vouch for the devices). */
const MAX_EXCESS_LAG_MS = 120_000;

/** The lag record after a stamped message, and that message's excess lag (ms, 0 without a stamp). */
function noteLag(lag: Lag | undefined, now: number, brokerTs: number | undefined): { lag: Lag | undefined; excess: number } {
  if (brokerTs === undefined || !Number.isFinite(brokerTs)) return { lag, excess: 0 };
  // Signed: a broker clock ahead of alerts' gives negative lags, and the baseline takes that out.
  const l = now - brokerTs;
  let b: Lag['b'];
  if (lag === undefined) b = [l, l, now];
  else if (now - lag.b[2] >= LAG_WINDOW_MS) b = [lag.b[1], l, now];
  else b = [lag.b[0], Math.min(lag.b[1], l), lag.b[2]];
  const excess = Math.min(MAX_EXCESS_LAG_MS, Math.max(0, l - Math.min(b[0], b[1])));
  return { lag: { x: Math.max(lag?.x ?? 0, excess), j: lag?.j ?? 0, t: lag?.t ?? now, b, r: Math.max(lag?.r ?? -Infinity, now - excess) }, excess };
}

/**
 * The excess a tick at `now` judges with, and the lag record after it. While alerts is behind (an
 * excess left from earlier ticks), a tick does not judge past what it has read (`r`): falling behind
 * faster than time passes (at 3 s per second), alerts reads no message for seconds while the excess
 * of the last one read decays by one second per second, and a home whose devices all report looked
 * silent (the supervision-backlog property, CI in session 15: a home_comm_loss at a 12 s backlog).
 * Once the excess has decayed to nothing the tick judges by its own clock again, so input that stops
 * for good is still judged silence, at most the last excess later, as before.
 */
function tickLag(lag: Lag | undefined, now: number): { lag: Lag | undefined; excess: number } {
  if (lag === undefined) return { lag, excess: 0 };
  const decayed = Math.min(MAX_EXCESS_LAG_MS, Math.max(lag.x, lag.j - Math.max(0, now - lag.t)));
  // The cap is not carried to the next tick (j keeps decaying): input that stopped is judged silence
  // again once the excess it left has run out.
  const excess = decayed > 0 && lag.r !== undefined && now - decayed > lag.r ? Math.min(MAX_EXCESS_LAG_MS, now - lag.r) : decayed;
  return { lag: { x: 0, j: decayed, t: now, b: lag.b, ...(lag.r !== undefined ? { r: lag.r } : {}) }, excess };
}

type Entry = [number, number, number, number, number?, number?];

/** Where a device's silence budget runs from: its last message, or a fresh budget given after it. */
function budgetFrom(e: Entry): number {
  return Math.max(e[0], e[5] ?? -Infinity);
}

/** NFPA 72 §23.16.2: 200 s to report the loss of a device. */
const REPORT_LIMIT_MS = 200_000;
const OFFLINE_GRACE_MS = 10_000;
const HOME_SET_FRACTION = 0.8;
const HOME_CLEAR_FRACTION = 0.5;
const HOME_MIN_DEVICES = 3;
const HOME_CLEAR_HOLD_MS = 30_000;
const MAX_DEFERRAL_MS = 60_000;
/** A device must stay back this long before its offline trouble clears (no flapping). */
const RESTORE_HOLD_MS = 30_000;
/** If the rule was not evaluated this long, the engine was down: restart the budgets, do not flood. */
const RESTART_GAP_MS = 60_000;

/** Longest silence budget a slow reporter earns: 2.5 intervals of 60 s, as care_no_data allows. */
const MAX_CADENCE_BUDGET_MS = 150_000;

/**
 * How long a device may be silent before it is "silent": its kind's heartbeat budget, or 2.5 of its
 * own recent intervals when it reports more slowly than its kind expects (a vital-signs monitor
 * reporting every 45 s is not lost between reports), at most 150 s; with the deferral below, never
 * past NFPA 72's 200 s.
 */
function budgetMs(d: Device, e?: Entry): number {
  return Math.max(DEVICE_KINDS[d.kind].heartbeatBudgetS * 1000, Math.min(2.5 * (e?.[4] ?? 0), MAX_CADENCE_BUDGET_MS));
}
/**
 * Silent this long, a device counts as down for the home check: two missed reports at its kind's
 * nominal period, or 2.5 of its own recent intervals when it reports more slowly (a 10 s detector
 * that reports every 30–60 s is not "down" between its reports: issue 11, any reporting interval),
 * never more than its heartbeat budget.
 */
function quietMs(d: Device, e: Entry): number {
  return Math.min(Math.max(2 * DEVICE_KINDS[d.kind].telemetryIntervalS * 1000, 2.5 * (e[4] ?? 0)), budgetMs(d, e));
}
function deferralMs(d: Device, e: Entry): number {
  return Math.max(0, Math.min(MAX_DEFERRAL_MS, REPORT_LIMIT_MS - budgetMs(d, e)));
}

function offlineSignal(d: Device, ctx: RuleContext, active: boolean, sourceTs: number, why: 'silent' | 'offline' | 'back'): Signal {
  const budgetS = DEVICE_KINDS[d.kind].heartbeatBudgetS;
  const text =
    why === 'silent'
      ? { zh: `设备失联（超过 ${budgetS} 秒无消息）`, en: `device silent (no message for over ${budgetS} s)` }
      : why === 'offline'
        ? { zh: '设备离线', en: 'device offline' }
        : { zh: '设备通信恢复', en: 'device communicating again' };
  const severity = DEVICE_KINDS[d.kind].category === 'fire' ? 'high' : 'medium';
  return troubleSignal('device_offline', severity, { device: d, ctx, active, sourceTs }, text);
}

function homeSignal(homeId: string, ctx: RuleContext, active: boolean, now: number, down: number, total: number): Signal {
  const home = ctx.registry.home(homeId);
  const name = { zh: home?.name ?? homeId, en: home?.nameEn ?? homeId };
  return {
    key: `home_comm_loss:${homeId}`,
    rule: 'home_comm_loss',
    category: 'device',
    signal: 'trouble',
    severity: 'critical',
    homeId,
    active,
    sourceTs: now,
    value: down,
    message: active
      ? { zh: `${name.zh}：全院通信中断（${down}/${total} 台设备失联），消防监控失效`, en: `${name.en}: home communication failure (${down}/${total} devices silent), fire monitoring lost` }
      : { zh: `${name.zh}：全院通信恢复（${down}/${total} 台仍失联）`, en: `${name.en}: home communication restored (${down}/${total} still silent)` },
  };
}

/**
 * After a gap in evaluation (the engine was down) every budget restarts from now, except a raised
 * device's that has not spoken since: its trouble stands until it does. Restarting it too made it
 * look back, cleared its trouble ("communicating again") 30 s after every restart and raised it again
 * a budget later (session 19). A raised device that was back (its restore hold counting) restarts
 * like the others: kept, it would count as down, and a home below the 80 % line before the restart
 * could be pushed over it (the session 19 review). A home whose communication loss is raised keeps
 * its devices as they were: restarted, they all looked up, and the home was reported restored 30 s
 * after the restart while still silent (then lost again once its devices were quiet once more).
 */
function rearm(state: SupervisionState, now: number, registry: RegistryIndex): SupervisionState {
  if (state.last < 0 || now - state.last <= RESTART_GAP_MS) return state;
  const d: SupervisionState['d'] = {};
  for (const [id, e] of Object.entries(state.d)) {
    const home = registry.device(id)?.homeId;
    d[id] = (e[2] === 1 && e[3] < 0) || (home !== undefined && state.h[home]?.on === true) ? e : [Math.max(e[0], now), e[1] >= 0 ? Math.max(e[1], now) : -1, e[2], e[3], e[4]];
  }
  return { d, h: state.h, last: now, ...(state.lag !== undefined ? { lag: state.lag } : {}) };
}

/**
 * When each home needs its next look: the first time a tick could change anything in it, were no
 * message to arrive. Until then a tick finds nothing to do there, and skips it. Visiting every device
 * every second cost 54 ms a tick at 102,000 devices (session 9, the alerts engine alone), a tenth of
 * a core before any message. Session 8 scheduled only homes at rest (every device up, none raised);
 * at 100,000 devices with some never connected nearly every home holds a raised device, so every
 * home was visited every tick again (session 12's profile: the tick was 15 % of alerts). Now a home
 * with raised, offline or silent devices is scheduled too: time only moves each of them towards one
 * next step (down, overdue, past its deferral, restore held long enough), and the earliest of those
 * steps is the next look. A message moves it only through its own device (below, in `evaluate`).
 *
 * Derived, never persisted: kept beside the engine-owned map it describes (keyed by that object, so
 * a copied, restored or re-armed state starts without one and its first tick visits every home),
 * and only under `ctx.inPlace`. The rule without it is the reference the tests compare against
 * (test/alerts/rules/fire/tick-schedule.property.test.ts).
 */
interface Schedule {
  readonly registry: RegistryIndex;
  /** Home → its next look; absent: look every tick. */
  readonly due: Map<string, Due>;
}
interface Due {
  /** The judged ms before which the home's evaluation would change nothing. */
  at: number;
  /**
   * The judged ms of the look that set this: every step above is monotonic in time, so a tick whose
   * clock went back (alerts' excess lag rose) looks again.
   */
  readonly from: number;
  /**
   * The latest `lastSeen` of the home's down devices at that look (-Infinity with none). A device
   * heard after it is up and counted in the home's fraction both before and after a new message of
   * it; one heard at or before it was down or undecided, and its message may change the fraction.
   */
  readonly since: number;
}
const schedules = new WeakMap<SupervisionState['d'], Schedule>();

/** 1 ms earlier than exact, so rounding of fractional budgets can only make a look early, never late. */
const SCHEDULE_SLACK_MS = 1;

function scheduleOf(d: SupervisionState['d'], ctx: RuleContext): Schedule | undefined {
  if (ctx.inPlace !== true) return undefined;
  const s = schedules.get(d);
  if (s !== undefined && s.registry === ctx.registry) return s;
  const fresh: Schedule = { registry: ctx.registry, due: new Map() };
  schedules.set(d, fresh);
  return fresh;
}

/** `now`: the clock judged by (platform ms less the excess input lag); `at`: the platform ms of the tick. */
function tick(now: number, at: number, lag: Lag | undefined, state: SupervisionState, ctx: RuleContext): RuleResult<SupervisionState> {
  // Under ctx.inPlace the engine owns the maps: entries are replaced in them, not the maps copied.
  // Copying 10,000 devices' map was 6–9 ms of CPU every tick (1 s), the largest stall of an idle
  // alerts process (issue 11; bench/snapshot-cost.ts prints the tick's cost).
  const d = ctx.inPlace === true ? state.d : { ...state.d };
  const h = ctx.inPlace === true ? state.h : { ...state.h };
  const schedule = scheduleOf(d, ctx);
  const signals: Signal[] = [];
  for (const home of ctx.registry.site.homes) {
    if (schedule !== undefined) {
      const due = schedule.due.get(home.id);
      if (due !== undefined && now < due.at && now >= due.from) continue;
      schedule.due.delete(home.id);
    }
    const devices = ctx.registry.devicesOfHome(home.id);
    let down = 0;
    // When the latest of the down devices was last heard: the silence began about then.
    let since = -Infinity;
    for (const dev of devices) {
      const e = (d[dev.id] ??= [now, -1, 0, -1]);
      if (e[1] >= 0 || now - e[0] > quietMs(dev, e)) {
        down++;
        since = Math.max(since, e[0]);
      }
    }
    // A slow reporter (a call button every 60 s) silent since before that, and not yet for two of
    // its periods, cannot tell yet whether the home is down: it is left out of the fraction rather
    // than counted as up, so slow devices do not delay a home-wide loss. One that reported after
    // the silence began is evidence the home is up and counts.
    let undecided = 0;
    if (down > 0) for (const dev of devices) {
      const e = d[dev.id] as Entry;
      if (e[1] < 0 && now - e[0] <= quietMs(dev, e) && e[0] <= since) undecided++;
    }
    const judged = devices.length - undecided;
    const frac = judged === 0 ? 0 : down / judged;
    const latch = h[home.id] ?? newLatch();
    const step = stepLatch(latch, frac >= HOME_SET_FRACTION && judged >= HOME_MIN_DEVICES, frac < HOME_CLEAR_FRACTION, now, { clearHoldMs: HOME_CLEAR_HOLD_MS });
    h[home.id] = step.latch;
    if (step.edge !== undefined) signals.push(homeSignal(home.id, ctx, step.edge === 'set', now, down, devices.length));
    if (step.edge === 'clear') {
      // Communication is back: every device gets a fresh budget to report before it is called silent.
      // A budget, not a report: its last-seen stays, so the home's picture (who is down, since when)
      // is what the devices said. Moving last-seen to now dated the silence of the devices that were
      // dead all along from this instant, and every device not heard since was then taken as a slow
      // reporter silent since before it: a home reporting once a minute with a few dead devices was
      // judged on those alone and raised "fire monitoring lost" again and again (session 19).
      for (const dev of devices) {
        const e = d[dev.id] as Entry;
        d[dev.id] = [e[0], e[1], e[2], e[3], e[4] ?? 0, now];
      }
    }
    for (const dev of devices) {
      const e = d[dev.id] as Entry;
      const [seen, off, raised, back, iv] = e;
      const offlineFor = off >= 0 ? now - off - OFFLINE_GRACE_MS : -1;
      const silentFor = now - budgetFrom(e) - budgetMs(dev, e);
      const overdue = Math.max(offlineFor, silentFor);
      if (step.latch.on) {
        // The home alert stands for every device of the home.
        if (raised === 1) {
          d[dev.id] = [seen, off, 0, -1, iv];
          signals.push(offlineSignal(dev, ctx, false, now, 'back'));
        }
        continue;
      }
      if (raised === 0) {
        if (overdue >= 0 && (frac < HOME_CLEAR_FRACTION || overdue >= deferralMs(dev, e))) {
          d[dev.id] = [seen, off, 1, -1, iv];
          signals.push(offlineSignal(dev, ctx, true, seen, offlineFor >= 0 ? 'offline' : 'silent'));
        }
      } else if (overdue >= 0 || off >= 0) {
        if (back >= 0) d[dev.id] = [seen, off, 1, -1, iv];
      } else if (back < 0) {
        d[dev.id] = [seen, off, 1, now, iv];
      } else if (now - back >= RESTORE_HOLD_MS) {
        d[dev.id] = [seen, off, 0, -1, iv];
        signals.push(offlineSignal(dev, ctx, false, seen, 'back'));
      }
    }
    // After an edge the home's devices were changed (fresh budgets): look again next tick.
    if (schedule !== undefined && step.edge === undefined) {
      const at = nextLook(devices, d, step.latch, frac, now);
      if (at !== undefined) schedule.due.set(home.id, { at, from: now, since: down > 0 ? since : -Infinity });
    }
  }
  return { state: { d, h, last: at, ...(lag !== undefined ? { lag } : {}) }, signals };
}

/**
 * The judged ms, less the slack, of the first step a tick could take in this home after the look at
 * `now` (its devices' entries as that look left them; `frac` the fraction it judged by), if no
 * message arrives: a device going down (the home's fraction and its undecided set change only so),
 * an unraised device overdue (past its deferral while half the home is down), a raised device back
 * for RESTORE_HOLD_MS or silent again. A raised device that is overdue or offline stays so until it
 * speaks. Undefined: the latch is counting towards an edge (it counts every tick), look next tick.
 */
function nextLook(devices: readonly Device[], d: SupervisionState['d'], latch: Latch, frac: number, now: number): number | undefined {
  if (latch.n !== 0 || latch.p !== -1) return undefined;
  let at = Infinity;
  for (const dev of devices) {
    const e = d[dev.id];
    if (e === undefined) return undefined;
    const [seen, off, raised, back] = e;
    // Down once silent longer than its quiet time (strictly), for good once offline.
    if (off < 0) {
      const down = seen + quietMs(dev, e);
      if (now <= down) at = Math.min(at, down);
    }
    // Under the home alert a tick only clears raised devices, which this look did.
    if (latch.on) continue;
    const budget = budgetFrom(e) + budgetMs(dev, e);
    if (raised === 0) {
      const wait = frac < HOME_CLEAR_FRACTION ? 0 : deferralMs(dev, e);
      at = Math.min(at, budget + wait, off >= 0 ? off + OFFLINE_GRACE_MS + wait : Infinity);
    } else if (off < 0 && now < budget) {
      // Back and counting (this look set `back` if it was not): cleared after the hold, or silent again.
      at = Math.min(at, back + RESTORE_HOLD_MS, budget);
    }
  }
  return at - SCHEDULE_SLACK_MS;
}

export const supervisionRule: Rule<SupervisionState> = {
  id: 'supervision',
  // Entries are replaced, never changed in place (Rule.snapshotMaps): a tick copies the map, not its entries.
  snapshotMaps: ['d'],
  accepts: { types: ['telemetry', 'event', 'status', 'tick'] },
  initialState: () => ({ d: {}, h: {}, last: -1 }),
  evaluate(input, prevState, ctx) {
    const state = rearm(prevState, input.now, ctx.registry);
    if (input.type === 'tick') {
      const judged = tickLag(state.lag, input.now);
      return tick(input.now - judged.excess, input.now, judged.lag, state, ctx);
    }
    if (input.type !== 'telemetry' && input.type !== 'event' && input.type !== 'status') return { state: prevState, signals: [] };
    const id = input.device.id;
    const prev = state.d[id];
    // When the device spoke, as far as the rule can tell: less how far behind the broker alerts is
    // (never before a message of it already read: sessions may deliver a little out of order).
    const noted = noteLag(state.lag, input.now, input.brokerTs);
    const seen = Math.max(prev?.[0] ?? -Infinity, input.now - noted.excess);
    const wentOffline = input.type === 'status' && !input.online;
    const off = wentOffline ? (prev !== undefined && prev[1] >= 0 ? prev[1] : seen) : -1;
    const raised = prev?.[2] ?? 0;
    // Back once it speaks again; the clear waits RESTORE_HOLD_MS at the tick.
    const back = raised === 1 && !wentOffline ? (prev !== undefined && prev[3] >= 0 ? prev[3] : seen) : -1;
    // The device's own reporting interval: the latest gap, or the last one decayed when it speeds up.
    const interval = recentInterval(prev?.[0], prev?.[4], seen);
    const entry: Entry = [seen, off, raised, back, interval];
    const last = Math.max(state.last, input.now);
    const lag = noted.lag !== undefined ? { lag: noted.lag } : {};
    // Under ctx.inPlace the engine owns the map: one entry written instead of every device copied.
    if (ctx.inPlace === true) {
      state.d[id] = entry;
      const schedule = schedules.get(state.d);
      const homeId = input.device.homeId;
      const due = schedule?.due.get(homeId);
      if (schedule !== undefined && due !== undefined) {
        // A device that was up (heard after the home's down devices) and unraised, heard again, only
        // moves its own quiet time (which may shrink with its interval; its overdue time is later):
        // the home's fraction stays. Anything else (offline, a raised device back, a down or
        // undecided one heard) needs the home looked at.
        if (prev !== undefined && off < 0 && raised === 0 && prev[0] > due.since) due.at = Math.min(due.at, entry[0] + quietMs(input.device, entry) - SCHEDULE_SLACK_MS);
        else schedule.due.delete(homeId);
      }
      return { state: { d: state.d, h: state.h, last, ...lag }, signals: [] };
    }
    return { state: { d: { ...state.d, [id]: entry }, h: state.h, last, ...lag }, signals: [] };
  },
};
