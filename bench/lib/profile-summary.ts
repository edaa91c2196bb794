/**
 * `node --import tsx bench/lib/profile-summary.ts FILE.cpuprofile [N]` — the top N functions by
 * self time in a V8 CPU profile (what `node --cpu-prof` writes), so a profile taken under bench load
 * can be read without a browser.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface SelfTime {
  readonly fn: string;
  readonly ms: number;
  readonly pct: number;
}

export function selfTimes(p: Profile): SelfTime[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const n = byId.get(samples[i] as number);
    const d = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    if (n === undefined) continue;
    const url = n.callFrame.url.replace(/^.*\/(node_modules\/)/, '$1').replace(/^file:\/\/.*\/main\//, '');
    const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    ms.set(key, (ms.get(key) ?? 0) + d);
    total += d;
  }
  return [...ms.entries()].map(([fn, t]) => ({ fn, ms: t, pct: total > 0 ? (100 * t) / total : 0 })).sort((a, b) => b.ms - a.ms);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: profile-summary.ts FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const rows = selfTimes(p);
  const idle = rows.find((r) => r.fn.startsWith('(idle)'))?.ms ?? 0;
  const total = rows.reduce((a, r) => a + r.ms, 0);
  process.stdout.write(`${file}: ${(total / 1000).toFixed(1)} s sampled, busy ${((total - idle) / 1000).toFixed(1)} s\n`);
  for (const r of rows.slice(0, Number(process.argv[3] ?? 25))) process.stdout.write(`${r.ms.toFixed(0).padStart(7)} ms ${r.pct.toFixed(1).padStart(5)} %  ${r.fn}\n`);
}
