import { readFileSync } from 'node:fs';

/**
 * CPU and memory of a process from /proc (Linux). CPU is utime+stime in clock ticks (USER_HZ,
 * 100 on Linux), so a sample pair gives the fraction of one core the process used in between.
 */
const TICKS_PER_S = 100;

export interface CpuSample {
  readonly ticks: number;
  readonly at: number;
}

export function cpuSample(pid: number): CpuSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces; the fields after its closing parenthesis are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return { ticks: utime + stime, at: performance.now() };
  } catch {
    return undefined;
  }
}

/** Cores used between two samples (1.0 = one core fully busy). */
export function coresUsed(a: CpuSample | undefined, b: CpuSample | undefined): number {
  if (a === undefined || b === undefined || b.at <= a.at) return Number.NaN;
  return (b.ticks - a.ticks) / TICKS_PER_S / ((b.at - a.at) / 1000);
}

/** Resident set size in bytes (VmRSS), or NaN if the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Tracks CPU of a set of named processes over a measurement window. */
export class CpuMeter {
  private start = new Map<string, CpuSample | undefined>();
  constructor(private readonly pids: Readonly<Record<string, number | undefined>>) {}
  begin(): void {
    for (const [name, pid] of Object.entries(this.pids)) this.start.set(name, pid === undefined ? undefined : cpuSample(pid));
  }
  /** Cores used per process since begin(). */
  end(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) out[name] = pid === undefined ? Number.NaN : coresUsed(this.start.get(name), cpuSample(pid));
    return out;
  }
}

/** Peak RSS over a window, polled every `everyMs`. */
export function rssPeak(pid: number, everyMs = 250): { stop(): number } {
  let peak = rssBytes(pid);
  const t = setInterval(() => {
    const v = rssBytes(pid);
    if (v > peak || Number.isNaN(peak)) peak = v;
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      const v = rssBytes(pid);
      return Math.max(peak, Number.isNaN(v) ? 0 : v);
    },
  };
}

export function machineInfo(): { nproc: number; memTotalMb: number; cpuModel: string; node: string; kernel: string } {
  let cpuModel = 'unknown';
  let nproc = 0;
  let memTotalMb = Number.NaN;
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    cpuModel = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? cpuModel;
    nproc = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
    const m = /MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) memTotalMb = Math.round(Number(m[1]) / 1024);
  } catch {
    // not Linux: leave unknown
  }
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return { nproc, memTotalMb, cpuModel, node: process.version, kernel };
}
