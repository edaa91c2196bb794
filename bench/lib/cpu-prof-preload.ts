/**
 * Preloaded (`--import`) into a profiled process by the bench (`--cpu-prof DIR`): profiles it with
 * the inspector and writes `<name>.<pid>.cpuprofile` into $BENCH_CPU_PROF_DIR when the process gets
 * SIGTERM, before its own shutdown runs. `node --cpu-prof` writes only on a clean exit, and a
 * process that takes longer than the bench's stop timeout to close is SIGKILLed and leaves nothing.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir !== undefined && dir !== '') {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  // 1 ms sampling: V8's default; enough for self-time tables.
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  const name = basename(dirname(process.argv[1] ?? 'node'));
  let written = false;
  const write = (): void => {
    if (written) return;
    written = true;
    session.post('Profiler.stop', (err, res) => {
      if (err === null) writeFileSync(join(dir, `${name}.${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  };
  process.prependListener('SIGTERM', write);
  process.prependListener('SIGINT', write);
  process.once('exit', write);
}
