import type { Benchmark } from './lib/context.ts';
import { relayBenchmark } from './relay.ts';
import { ingestBenchmark } from './ingest.ts';
import { drainBenchmark } from './drain.ts';
import { alertsBenchmark, fanoutBenchmark } from './alerts.ts';
import { connectionsBenchmark } from './connections.ts';
import { durableBenchmark } from './durable.ts';
import { encoderBenchmark } from './encoder.ts';
import { reconnectBenchmark } from './reconnect.ts';
import { connections100kBenchmark } from './connections100k.ts';
import { massTroubleBenchmark } from './mass-trouble.ts';
import { rulesAtScaleBenchmark } from './rules-at-scale.ts';

/** The suite, in the order `npm run bench` runs it (2 before 3 and 5: they use its maximum); opt-in ones only with --only. */
export const BENCHMARKS: readonly Benchmark[] = [relayBenchmark, ingestBenchmark, drainBenchmark, alertsBenchmark, fanoutBenchmark, connectionsBenchmark, durableBenchmark, reconnectBenchmark, encoderBenchmark, massTroubleBenchmark, rulesAtScaleBenchmark, connections100kBenchmark];
