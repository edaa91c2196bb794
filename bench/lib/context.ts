/** What every benchmark gets from the runner, and what it returns. */
export interface BenchContext {
  readonly root: string;
  readonly quick: boolean;
  readonly runs: number;
  /** `--cpu-prof DIR`: our processes (broker, ingest, alerts) write V8 .cpuprofile files there. */
  readonly cpuProf?: string;
  /** `--devices N`, `--nodes N`, `--rate N`: sizes of the `connections100k` benchmark (its defaults when unset). */
  readonly devices?: number;
  readonly nodes?: number;
  readonly rate?: number;
  /**
   * `--device-nice N`: `connections100k` runs its device-side broker nodes and HAProxy processes at
   * this niceness, so that on one machine the alarm side (services', lane and readings nodes, Redis,
   * alerts) gets the CPU first, as it would on machines of its own (docs/scaling.md).
   */
  readonly deviceNice?: number;
  /**
   * `--generator-nice N`: niceness of `connections100k`'s device load generators (default 5). Session
   * 13's run B: at 5, with the device nodes at 0, the generators fell behind their own keepalives
   * ten minutes into the load and 85,000 devices dropped.
   */
  readonly generatorNice?: number;
  /**
   * `--generator-cpu PCT`: `connections100k`'s device load generators get PCT % of the machine's CPU
   * when it is contended, as a CPU group of their own against everything else (lib/cpu-groups.ts), and
   * run at nice 0 inside it unless `--generator-nice` says otherwise: the devices' own CPUs.
   */
  readonly generatorCpu?: number;
  log(msg: string): void;
}

export interface Row {
  readonly bench: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  /** The reference measured in the same run on the same load generator. */
  readonly reference?: { readonly name: string; readonly value: number };
  /** value / reference (or as documented per row). */
  readonly ratio?: number;
  readonly target?: string;
  readonly met?: boolean;
  readonly note?: string;
}

export interface BenchResult {
  readonly rows: Row[];
  /** Everything measured, per run, for the JSON file. */
  readonly detail: unknown;
}

export interface Benchmark {
  readonly name: string;
  readonly title: string;
  /** Runs only when named in `--only` (a long benchmark that needs a quiet machine). */
  readonly optIn?: boolean;
  /** Its own whole-benchmark bound per run, minutes (default: run.ts benchmarkBoundMs's, 8 quick / 40 full). */
  readonly boundMinutes?: number;
  run(ctx: BenchContext): Promise<BenchResult>;
}

/** Figures one benchmark hands to a later one in the same invocation (benchmark 2's max → 3 and 5). */
export const sharedResults: { maxSustained?: number; maxSustainedSource?: string } = {};
