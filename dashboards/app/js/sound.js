// Alarm sounds with Web Audio, one pattern per signal class, as a fire-alarm panel keeps them apart
// (issue 3: "each has its own severity and sound").
// - alarm (a fire alarm proper, severity critical): the evacuation signal NFPA 72 §18.4.2 prescribes,
//   the ANSI S3.41 / ISO 8201 temporal-3 pattern: three 0.5 s tones 0.5 s apart, then 1.5 s of
//   silence (a 4 s cycle), repeated until acknowledged. Loud square wave at 880 Hz.
// - prealarm (an unverified smoke pre-alarm, a low gas level): must not sound like a fire; one soft
//   mid tone (660 Hz sine, 0.3 s) every 5 s.
// - supervisory (protection system off-normal): a slower two-tone (falling 520→392 Hz) every 8 s.
// - trouble (a fault): the slowest, one short low beep (440 Hz, 0.2 s) every 15 s, like a panel's
//   trouble sounder.
// - care (a resident needs someone): a rising three-note chime (C5–E5–G5) every 10 s.
// Tests read `window.__carewatchAudio`: which class plays, and the tones of the last cycle scheduled.

export const PATTERNS = {
  alarm: { periodMs: 4000, type: 'square', gain: 0.18, tones: [[0, 500, 880], [1000, 500, 880], [2000, 500, 880]] },
  prealarm: { periodMs: 5000, type: 'sine', gain: 0.12, tones: [[0, 300, 660]] },
  supervisory: { periodMs: 8000, type: 'triangle', gain: 0.12, tones: [[0, 400, 520], [500, 600, 392]] },
  trouble: { periodMs: 15000, type: 'sine', gain: 0.1, tones: [[0, 200, 440]] },
  care: { periodMs: 10000, type: 'sine', gain: 0.12, tones: [[0, 180, 523], [220, 180, 659], [440, 360, 784]] },
};

const probe = { contextState: 'none', playing: null, oscillatorsStarted: 0, activeOscillators: 0, cycles: 0, periodMs: null, lastCycle: [] };
window.__carewatchAudio = probe;
// For tests: the context itself, to suspend it as the OS or the browser may (not serialised with the probe).
Object.defineProperty(probe, 'context', { enumerable: false, value: () => ctx });

let ctx;
let current = null;
let timer;
const stateListeners = new Set();

/**
 * Creates the AudioContext if need be and asks it to run. Browsers let it run only after a user
 * gesture (the login click, the "enable sound" button), or at once under an autoplay policy that
 * allows it; until then it stays 'suspended', and it may be suspended again later (the OS, another
 * tab): onAudioState tells whoever shows the "enable sound" prompt.
 */
export function unlockAudio() {
  try {
    if (ctx === undefined) {
      ctx = new AudioContext();
      ctx.onstatechange = () => {
        probe.contextState = ctx.state;
        for (const f of stateListeners) f(ctx.state);
      };
    }
    if (ctx.state === 'suspended') void ctx.resume().catch(() => undefined);
    probe.contextState = ctx.state;
  } catch {
    probe.contextState = 'unavailable';
  }
  return ctx?.state === 'running';
}

/** Calls `f(state)` at each change of the AudioContext's state; returns the unsubscribe. */
export function onAudioState(f) {
  stateListeners.add(f);
  return () => stateListeners.delete(f);
}

export function audioReady() {
  return ctx !== undefined && ctx.state === 'running';
}

function playOnce(pattern) {
  if (!ctx) return;
  const t0 = ctx.currentTime + 0.02;
  const cycle = [];
  for (const [offset, dur, freq] of pattern.tones) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = pattern.type;
    osc.frequency.value = freq;
    // Short ramps at both ends: no click, and the tone length stays what the pattern says.
    const start = t0 + offset / 1000;
    const end = start + dur / 1000;
    gain.gain.setValueAtTime(0, start);
    gain.gain.linearRampToValueAtTime(pattern.gain, start + 0.01);
    gain.gain.setValueAtTime(pattern.gain, end - 0.01);
    gain.gain.linearRampToValueAtTime(0, end);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start);
    osc.stop(end);
    cycle.push({ offsetMs: offset, durationMs: dur, frequencyHz: osc.frequency.value, type: osc.type });
    probe.oscillatorsStarted += 1;
    probe.activeOscillators += 1;
    osc.onended = () => (probe.activeOscillators -= 1);
  }
  probe.cycles += 1;
  probe.lastCycle = cycle;
}

/** Plays the pattern of `cls` (a key of PATTERNS) until another class or null is set. */
export function setAlarm(cls) {
  if (cls === current) return;
  current = cls;
  probe.playing = cls;
  probe.periodMs = cls && PATTERNS[cls] ? PATTERNS[cls].periodMs : null;
  probe.lastCycle = [];
  clearInterval(timer);
  if (!cls || !PATTERNS[cls]) return;
  unlockAudio();
  const p = PATTERNS[cls];
  playOnce(p);
  timer = setInterval(() => playOnce(p), p.periodMs);
}
