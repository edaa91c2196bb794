import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Two CPU groups for one benchmark run (Linux cgroup v1 `cpu` controller, `cpu.shares`): the load
 * generators' and everyone else's (the runner and, by inheritance at fork, every process it starts
 * after the split). When both want more than the machine has, the generators get `percent` % of it
 * and the rest the remainder; when one is idle the other may use everything (shares are
 * work-conserving, unlike a CFS quota).
 *
 * Why: on one shared machine the device simulators stand for devices that in production run on CPUs
 * of their own. At a lower niceness they starve as soon as the system under test is busy (a process's
 * nice weighs against each of ~30 busy processes, and the generators are 12 of them); a simulator
 * that misses its devices' keepalives then makes the broker close them, which is a fault of the
 * bench, not of the system (session 13 run B, session 16 run 2). A group weighs as one entity against
 * the other group, however many processes are in each.
 *
 * Needs the v1 `cpu` hierarchy mounted writable at /sys/fs/cgroup/cpu and root; `open` says why not.
 * The share is against the other group only: busy processes outside both (in cgroup v1 each task of
 * the parent group weighs as one entity beside the two groups) take theirs first. On this machine
 * nothing else runs during a benchmark.
 */
export interface CpuGroups {
  /** Moves a running process (all its threads) into the generators' group. */
  addGenerator(pid: number): void;
  /** Moves the runner back to the root group and removes both groups (they must be empty of live processes by then). */
  close(): void;
}

const V1_CPU = '/sys/fs/cgroup/cpu';
/** How long close waits for killed processes to leave a group before it gives up on removing it. */
const CLOSE_WAIT_MS = 5_000;

/** cpu.shares of a group that gets `percent` % against a group of 1,024 (the default weight). */
export function sharesFor(percent: number): number {
  if (!(percent > 0 && percent < 100)) throw new Error(`cpu percent must be in (0, 100), got ${percent}`);
  return Math.max(2, Math.round((1024 * percent) / (100 - percent)));
}

export function openCpuGroups(tag: string, percent: number): CpuGroups | { error: string } {
  if (!existsSync(join(V1_CPU, 'cpu.shares'))) return { error: `no cgroup v1 cpu controller at ${V1_CPU}` };
  const gen = join(V1_CPU, `carewatch-bench-${tag}-devices`);
  const rest = join(V1_CPU, `carewatch-bench-${tag}-rest`);
  // Where the runner was: it goes back there, and so do processes still in a group at the end.
  const home = join(V1_CPU, /^\d+:cpu(?:,[^:]*)?:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/');
  const close = (): void => {
    try {
      writeFileSync(join(home, 'cgroup.procs'), String(process.pid));
    } catch {
      // the runner is exiting anyway
    }
    // Processes still in a group go back so that it can be removed. On an interrupted run the
    // children were SIGKILLed just before this: a process still exiting cannot be moved (ESRCH) and
    // keeps its group busy until it is gone, so each group is tried again for up to CLOSE_WAIT_MS
    // (session 18: every SIGTERMed run left its two groups behind).
    const deadline = Date.now() + CLOSE_WAIT_MS;
    for (const dir of [gen, rest]) {
      while (existsSync(dir)) {
        try {
          for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
            try {
              writeFileSync(join(home, 'cgroup.procs'), pid);
            } catch {
              // gone or exiting meanwhile
            }
          }
          rmdirSync(dir);
        } catch {
          // busy: a process still exiting
          if (Date.now() >= deadline) break; // left for the operator (named after the run's tag)
          // Synchronous on purpose: this also runs in the process's 'exit' handler.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        }
      }
    }
  };
  try {
    mkdirSync(gen, { recursive: true });
    mkdirSync(rest, { recursive: true });
    writeFileSync(join(gen, 'cpu.shares'), String(sharesFor(percent)));
    writeFileSync(join(rest, 'cpu.shares'), '1024');
    // The runner first: children forked after this inherit the rest group.
    writeFileSync(join(rest, 'cgroup.procs'), String(process.pid));
  } catch (err) {
    close();
    return { error: `cannot use ${V1_CPU}: ${(err as Error).message}` };
  }
  return {
    addGenerator(pid) {
      // cgroup.procs moves every thread of the process (V8's and libuv's helpers included).
      writeFileSync(join(gen, 'cgroup.procs'), String(pid));
    },
    close,
  };
}
