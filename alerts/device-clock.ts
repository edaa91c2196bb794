/**
 * The time the rules see for a device's reading or event: its own `ts`, unless its clock is known
 * to be wrong. Pure: the engine keeps one `DeviceClock` per device and passes the time it received the
 * message (`receivedTs`, the alerts process's clock, the one the rules compare with `now`).
 *
 * Why: the rules order a device's readings by the device's `ts` and ignore one older than the
 * newest they saw (a redelivered copy must not undo a newer reading). The contract accepts readings
 * stamped up to 1 h ahead and 7 days behind the broker (docs/protocol.md "Device clock"), so until
 * session 26 one reading stamped 55 min ahead (an RTC glitch) made the heat rate-of-rise, NEWS2,
 * vital-sign windows and bed tracking ignore that device for 55 minutes, and a clock that stepped
 * back days (time restored from flash after a reboot) for days; a monitor 6 minutes slow never
 * scored NEWS2 (its values judged stale against the platform clock). A reading cannot have been
 * measured after it was received, and a clock off by the same amount for a minute is off:
 *
 * - **Ahead**: a time past its receipt is taken as the receipt (one glitch then costs nothing).
 * - **Steadily behind**: when the device's offset from its receipt (`ts − receivedTs`) stays within
 *   `STEADY_MS` for `SETTLE_MS` of receipt time and is more than `SKEW_MS` behind, its readings are
 *   moved by that offset from then on (its own spacing kept, so a rate of rise is its own). A clock
 *   that is right again (offset within `SKEW_MS` for `SETTLE_MS`) is no longer moved. A clock steadily
 *   ahead needs no offset: the first rule already puts its readings at their receipt. Only readings
 *   teach the offset; events are moved by what they taught (an event the receiver re-stamped at the
 *   broker's time, its clock out of the contract's window, is then still at that time).
 * - **Anything else** is taken as the device says: a buffer flushed after an outage arrives with an
 *   offset that grows towards zero (never steady), so its readings keep their own times and the rules
 *   replay them in order, as before; readings interleaved with live ones stay older and are ignored.
 *
 * The receipt here rather than the broker's stamp (`brokerTs`): the rules' `now` is this process's
 * clock, and so is a test's manual clock. A backlog this process drains after a restart arrives in a
 * burst, its offsets shrinking: never steady either.
 *
 * Left: a buffer trickled at exactly the live rate for a minute looks like a slow clock and is moved
 * to the present; a clock off by less than `SKEW_MS` is not moved (its readings are ignored at most
 * that long after a step back).
 */

/** Network, broker and queueing latency stay far below this; a device clock off by more is corrected. */
export const SKEW_MS = 5_000;
/** Offsets within this of each other are one clock (latency jitter, RTC drift over minutes). */
export const STEADY_MS = 5_000;
/** How long an offset must hold, in receipt time, before it is believed. */
export const SETTLE_MS = 60_000;

export interface DeviceClock {
  /** Offset (`ts − receivedTs`) at the start of the current steady run. */
  runOffset: number;
  /** Receipt time of the first reading of the current run. */
  runSince: number;
  /** Added to the device's `ts` for the rules (0: its clock is taken as it is). */
  correction: number;
}

/** What a reading of a device becomes: the rule time, and whether the device's correction changed. */
export interface ClockStep {
  readonly ts: number;
  readonly changed: boolean;
}

export function newDeviceClock(ts: number, receivedTs: number): DeviceClock {
  return { runOffset: ts - receivedTs, runSince: receivedTs, correction: 0 };
}

/**
 * The rule time of one reading (`learn`: a telemetry reading, which moves the clock's estimate) or
 * event (`learn` false: corrected with what the readings taught, never moves it). Updates `clock`.
 */
export function ruleTime(clock: DeviceClock, ts: number, receivedTs: number, learn: boolean): ClockStep {
  let changed = false;
  if (learn) {
    const offset = ts - receivedTs;
    if (Math.abs(offset - clock.runOffset) > STEADY_MS) {
      clock.runOffset = offset;
      clock.runSince = receivedTs;
    } else if (receivedTs - clock.runSince >= SETTLE_MS) {
      const correction = clock.runOffset < -SKEW_MS ? -offset : 0;
      // Follow the clock only when it moved by more than jitter: a settled correction stays put.
      if ((correction === 0) !== (clock.correction === 0) || Math.abs(correction - clock.correction) > STEADY_MS) {
        clock.correction = correction;
        changed = true;
      }
    }
  }
  const t = ts + clock.correction;
  return { ts: t > receivedTs ? receivedTs : t, changed };
}
