/**
 * `npm run bench` — runs the benchmark suite (issue 6), prints a table, writes
 * bench/results/latest.json and bench/results/<timestamp>.json.
 *
 *   npm run bench -- [--only relay,ingest,alerts,connections,drain,fanout,durable,reconnect,encoder,masstrouble,rulesatscale,connections100k] [--quick] [--runs N] [--cpu-prof DIR] [--ingest-max N]
 *   npm run bench -- --only connections100k [--devices N] [--nodes N] [--rate N] [--device-nice N] [--generator-nice N] [--generator-cpu PCT]   (opt-in: not part of the default suite)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo } from './lib/proc.ts';
import { formatTable } from './lib/table.ts';
import { sharedResults, type BenchContext, type Benchmark, type Row } from './lib/context.ts';
import { BENCHMARKS } from './benchmarks.ts';
import { killAllChildren } from './lib/processes.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Args {
  readonly only: readonly string[] | undefined;
  readonly quick: boolean;
  readonly runs: number;
  readonly cpuProf?: string;
  /** `--ingest-max N`: benchmark 2's maximum from an earlier invocation, so `alerts` loads at N/2 without re-running `ingest`. */
  readonly ingestMax?: number;
  /** `connections100k`: devices, broker nodes, total telemetry msg/s. */
  readonly devices?: number;
  readonly nodes?: number;
  readonly rate?: number;
  /** `connections100k`: niceness of the device-side broker nodes and HAProxy processes (default 0). */
  readonly deviceNice?: number;
  /** `connections100k`: niceness of the device load generators (default 5). */
  readonly generatorNice?: number;
  /** `connections100k`: percent of the CPU guaranteed to the device load generators (a CPU group; unset: none). */
  readonly generatorCpu?: number;
}

export function parseArgs(argv: readonly string[], known: readonly string[]): Args {
  let only: string[] | undefined;
  let quick = false;
  let runs = 3;
  let cpuProf: string | undefined;
  let ingestMax: number | undefined;
  const sizes: { devices?: number; nodes?: number; rate?: number; deviceNice?: number; generatorNice?: number; generatorCpu?: number } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a.startsWith('--cpu-prof')) cpuProf = value();
    else if (a.startsWith('--ingest-max')) {
      ingestMax = Number(value());
      if (!Number.isInteger(ingestMax) || ingestMax < 2) throw new Error('--ingest-max expects an integer msg/s ≥ 2');
    }
    else if (a.startsWith('--device-nice') || a.startsWith('--generator-nice')) {
      const key = a.startsWith('--device-nice') ? 'deviceNice' : 'generatorNice';
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0 || v > 19) throw new Error(`${a.replace(/=.*/, '')} expects an integer 0..19`);
      sizes[key] = v;
    }
    else if (a.startsWith('--generator-cpu')) {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 1 || v > 90) throw new Error('--generator-cpu expects an integer percent 1..90');
      sizes.generatorCpu = v;
    }
    else if (a.startsWith('--devices') || a.startsWith('--nodes') || a.startsWith('--rate')) {
      const key = (a.startsWith('--devices') ? 'devices' : a.startsWith('--nodes') ? 'nodes' : 'rate') as keyof typeof sizes;
      const v = Number(value());
      if (!Number.isInteger(v) || v < (key === 'nodes' ? 2 : 1)) throw new Error(`--${key} expects an integer ≥ ${key === 'nodes' ? 2 : 1}`);
      sizes[key] = v;
    }
    else if (a.startsWith('--only')) only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a.startsWith('--runs')) {
      runs = Number(value());
      if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error('--runs expects an integer 1..20');
    } else throw new Error(`unknown option ${a}; usage: npm run bench -- [--only ${known.join(',')}] [--quick] [--runs N] [--cpu-prof DIR] [--ingest-max N] [--devices N] [--nodes N] [--rate N] [--device-nice N] [--generator-nice N] [--generator-cpu PCT]`);
  }
  for (const o of only ?? []) if (!known.includes(o)) throw new Error(`--only: unknown benchmark "${o}"; known: ${known.join(', ')}`);
  return { only, quick, runs, ...(cpuProf !== undefined ? { cpuProf } : {}), ...(ingestMax !== undefined ? { ingestMax } : {}), ...sizes };
}

/** Whole-benchmark bound: 8 min per run quick, 40 min per run full (the slowest, `connections`, needs ~15). */
export function benchmarkBoundMs(ctx: Pick<BenchContext, 'quick' | 'runs'>, b?: Pick<Benchmark, 'boundMinutes'>): number {
  return ctx.runs * (b?.boundMinutes ?? (ctx.quick ? 8 : 40)) * 60_000;
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2), BENCHMARKS.map((b) => b.name));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(2);
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`bench: ${sig}: stopping every child process\n`);
      killAllChildren();
      process.exit(130);
    });
  }
  const started = new Date();
  const ctx: BenchContext = {
    root: ROOT,
    quick: args.quick,
    runs: args.runs,
    ...(args.cpuProf !== undefined ? { cpuProf: resolve(args.cpuProf) } : {}),
    ...(args.devices !== undefined ? { devices: args.devices } : {}),
    ...(args.nodes !== undefined ? { nodes: args.nodes } : {}),
    ...(args.rate !== undefined ? { rate: args.rate } : {}),
    ...(args.deviceNice !== undefined ? { deviceNice: args.deviceNice } : {}),
    ...(args.generatorNice !== undefined ? { generatorNice: args.generatorNice } : {}),
    ...(args.generatorCpu !== undefined ? { generatorCpu: args.generatorCpu } : {}),
    log: (m) => process.stderr.write(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0)}s] ${m}\n`),
  };
  if (args.ingestMax !== undefined) Object.assign(sharedResults, { maxSustained: args.ingestMax, maxSustainedSource: '--ingest-max (an earlier ingest run)' });
  const selected: Benchmark[] = BENCHMARKS.filter((b) => (args.only === undefined && b.optIn !== true) || args.only?.includes(b.name) === true);
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const b of selected) {
    ctx.log(`${b.name}: ${b.title}`);
    // Every benchmark is bounded as a whole (on top of its own per-step bounds): past the bound its
    // children are killed and it is reported as failed, so the suite always finishes by itself.
    const boundMs = benchmarkBoundMs(ctx, b);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        killAllChildren();
        reject(new Error(`${b.name} did not finish within ${boundMs / 60_000} min; its processes were killed`));
      }, boundMs);
    });
    try {
      const res = await Promise.race([b.run(ctx), bound]);
      rows.push(...res.rows);
      details[b.name] = res.detail;
    } catch (err) {
      const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
      errors[b.name] = msg;
      ctx.log(`${b.name} FAILED: ${msg}`);
    } finally {
      clearTimeout(timer);
    }
  }
  const report = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: args,
    machine: machineInfo(),
    rows,
    errors,
    details,
  };
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(report, null, 2);
  writeFileSync(join(dir, 'latest.json'), json);
  writeFileSync(join(dir, `${started.toISOString().replace(/[:.]/g, '-')}.json`), json);
  process.stdout.write(`${formatTable(rows)}\n`);
  for (const [name, msg] of Object.entries(errors)) process.stdout.write(`\n${name} FAILED: ${msg.split('\n')[0]}\n`);
  process.stdout.write(`\nresults: ${join('bench', 'results', 'latest.json')}\n`);
  // Children are all stopped by now; exit explicitly so a stray handle cannot keep the run alive.
  process.exit(Object.keys(errors).length > 0 ? 1 : 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) void main();
