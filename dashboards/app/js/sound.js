// Alarm sounds with Web Audio, one pattern per signal class as a fire panel has (issue 3):
// fire alarm = ISO 8201 / NFPA 72 §18.4.2 temporal-3 (three 0.5 s tones, 1.5 s pause);
// supervisory = two-tone; trouble = one short beep; care = soft double chime.
// Tests read `window.__carewatchAudio` to check that sound actually started.

const PATTERNS = {
  alarm: { periodMs: 4000, tones: [[0, 500, 880], [1000, 500, 880], [2000, 500, 880]], type: 'square' },
  supervisory: { periodMs: 3000, tones: [[0, 400, 660], [450, 400, 520]], type: 'triangle' },
  trouble: { periodMs: 10000, tones: [[0, 250, 440]], type: 'sine' },
  care: { periodMs: 15000, tones: [[0, 200, 784], [260, 300, 659]], type: 'sine' },
};

const probe = { contextState: 'none', playing: null, oscillatorsStarted: 0, activeOscillators: 0 };
window.__carewatchAudio = probe;

let ctx;
let current = null;
let timer;

/** Must be called from a user gesture (login click) so the browser lets audio start. */
export function unlockAudio() {
  try {
    ctx ??= new AudioContext();
    if (ctx.state === 'suspended') void ctx.resume();
    probe.contextState = ctx.state;
    ctx.onstatechange = () => (probe.contextState = ctx.state);
  } catch {
    probe.contextState = 'unavailable';
  }
  return ctx?.state === 'running';
}

export function audioReady() {
  return ctx !== undefined && ctx.state === 'running';
}

function playOnce(pattern) {
  if (!ctx) return;
  const t0 = ctx.currentTime + 0.02;
  for (const [offset, dur, freq] of pattern.tones) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = pattern.type;
    osc.frequency.value = freq;
    gain.gain.value = 0.15;
    osc.connect(gain).connect(ctx.destination);
    osc.start(t0 + offset / 1000);
    osc.stop(t0 + (offset + dur) / 1000);
    probe.oscillatorsStarted += 1;
    probe.activeOscillators += 1;
    osc.onended = () => (probe.activeOscillators -= 1);
  }
}

/** Plays the pattern of the most urgent class that still needs someone, or stops. */
export function setAlarm(cls) {
  if (cls === current) return;
  current = cls;
  probe.playing = cls;
  clearInterval(timer);
  if (!cls || !PATTERNS[cls]) return;
  unlockAudio();
  const p = PATTERNS[cls];
  playOnce(p);
  timer = setInterval(() => playOnce(p), p.periodMs);
}
