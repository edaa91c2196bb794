/**
 * A longer fuzz run than npm test's (issue 12), with its own private InfluxDB:
 *
 *   npm run fuzz -- [count=5000] [seed=random]
 *
 * Prints the counts by outcome and rejection reason (test/hostile/fuzz-run.ts) and exits 1 if a
 * process went down, a publish went unanswered or the valid reading after the fuzz was not stored.
 */
import { createInfluxServer } from '../../common/influxd.ts';
import { formatFuzz, runFuzz } from './fuzz-run.ts';

const count = Number(process.argv[2] ?? 5000);
const seed = Number(process.argv[3] ?? Math.floor(Math.random() * 2 ** 31));
const influx = await createInfluxServer();
await influx.start();
let code = 1;
try {
  console.log(`fuzz: ${count} random payloads, seed ${seed} (repeat with: npm run fuzz -- ${count} ${seed})`);
  const r = await runFuzz({ influxUrl: influx.url, database: 'fuzz', count, seed, log: (l) => console.log(l) });
  console.log(formatFuzz(r, seed));
  code = r.brokerAlive && r.ingestAlive && r.validStored && r.outcomes.timeout === 0 ? 0 : 1;
} finally {
  await influx.close();
}
process.exit(code);
