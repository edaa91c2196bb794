import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openCpuGroups, sharesFor } from '../../bench/lib/cpu-groups.ts';

/** connections100k's `--generator-cpu` (bench/lib/cpu-groups.ts): the device simulators' CPU of their own. */
describe('benchmark CPU groups', () => {
  it('weighs the generators\' group to get the asked share against a group of the default weight', () => {
    expect(sharesFor(50)).toBe(1024);
    expect(sharesFor(25)).toBe(341);
    const s = sharesFor(40);
    expect(s / (s + 1024)).toBeCloseTo(0.4, 3);
    expect(() => sharesFor(100)).toThrow(/\(0, 100\)/);
  });

  const writable = existsSync('/sys/fs/cgroup/cpu/cpu.shares') && process.getuid?.() === 0;
  it.skipIf(!writable)('moves a generator into its group, and the runner back out and both groups away on close', async () => {
    const tag = `test-${process.pid}`;
    const before = /^\d+:cpu:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
    const g = openCpuGroups(tag, 30);
    if ('error' in g) throw new Error(g.error);
    const child = spawn('sleep', ['30']);
    try {
      const cpuGroupOf = (pid: number): string => /^\d+:cpu:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1] ?? '';
      // The runner (this process) is in the rest group; its child forked after the split too, until moved.
      expect(cpuGroupOf(process.pid)).toBe(`/carewatch-bench-${tag}-rest`);
      expect(cpuGroupOf(child.pid as number)).toBe(`/carewatch-bench-${tag}-rest`);
      g.addGenerator(child.pid as number);
      expect(cpuGroupOf(child.pid as number)).toBe(`/carewatch-bench-${tag}-devices`);
      expect(readFileSync(`/sys/fs/cgroup/cpu/carewatch-bench-${tag}-devices/cpu.shares`, 'utf8').trim()).toBe(String(sharesFor(30)));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      g.close();
    }
    expect(/^\d+:cpu:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1]).toBe(before);
    expect(existsSync(`/sys/fs/cgroup/cpu/carewatch-bench-${tag}-devices`)).toBe(false);
    expect(existsSync(`/sys/fs/cgroup/cpu/carewatch-bench-${tag}-rest`)).toBe(false);
  });

  it.skipIf(!writable)('removes both groups when closed right after its processes were SIGKILLed (an interrupted run)', async () => {
    const tag = `test-kill-${process.pid}`;
    const g = openCpuGroups(tag, 30);
    if ('error' in g) throw new Error(g.error);
    // A process with 1 GB of touched memory takes a while to exit after SIGKILL (the kernel frees
    // it): until then it cannot be moved and keeps its group busy, as a killed benchmark's children do.
    const big = (): ReturnType<typeof spawn> => spawn(process.execPath, ['-e', 'const b = Buffer.alloc(1e9, 1); process.stdout.write("ready"); setInterval(() => b[0]++, 1000)']);
    const children = [big(), big()];
    try {
      await Promise.all(children.map((c) => new Promise((r) => c.stdout?.once('data', r))));
      g.addGenerator(children[0]?.pid as number);
    } finally {
      for (const c of children) c.kill('SIGKILL');
      g.close();
    }
    const left = ['devices', 'rest'].map((k) => `/sys/fs/cgroup/cpu/carewatch-bench-${tag}-${k}`).filter((dir) => existsSync(dir));
    // A failure leaves nothing behind either: once the children are gone the groups are empty.
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    for (const dir of left) rmdirSync(dir);
    expect(left).toEqual([]);
  });
});
