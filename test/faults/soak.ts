import { formatReport, runChaos } from './harness.ts';

/**
 * The long fault soak of issue 12, outside `npm test`: `npm run soak` (default 10 minutes), or
 * `npm run soak -- 30` for 30 minutes; FAULTS_SEED repeats a schedule. The same harness as
 * test/faults/chaos.test.ts, scaled with the length: the broker, ingest and alerts are SIGKILLed about
 * once every 2½ minutes each, InfluxDB is down for a fifth of the run at once (2 minutes of a
 * 10-minute run: the 1 MiB spool bound is reached within seconds, the rest waits at the broker), and a fire alarm is raised about every minute plus one during each alerts
 * outage. It needs Debian's influxdb package (scripts/ensure-deps.sh) and prints the table that
 * bench/README.md "Fault soak" reports; the exit code is 1 if anything acknowledged was lost or
 * stored twice, or an alarm did not reach a page.
 */

const minutes = Number(process.argv[2] ?? process.env.FAULTS_SOAK_MINUTES ?? 10);
if (!Number.isFinite(minutes) || minutes < 1) {
  process.stderr.write('usage: npm run soak -- [minutes ≥ 1]\n');
  process.exit(2);
}
const seed = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const loadMs = minutes * 60_000;
const kills = Math.max(2, Math.round(minutes / 2.5));
const report = await runChaos({
  seed,
  loadMs,
  devices: 50,
  intervalMs: 250,
  kills: { broker: kills, ingest: kills, alerts: kills },
  influxOutages: 1,
  influxOutageMs: loadMs / 5,
  spoolMaxBytes: 1024 * 1024,
  alarms: Math.min(21 - kills, Math.max(3, Math.round(minutes))),
  hostile: true,
});
const title = `fault soak, ${minutes} min, ${new Date().toISOString().slice(0, 16)}Z`;
process.stdout.write(`${formatReport(report, title)}\n`);
const ok = report.lost === 0 && report.duplicates === 0 && report.phantom === 0 && report.alertsMissing.length === 0;
process.stdout.write(ok ? 'PASS: nothing acknowledged lost or duplicated, every alarm delivered\n' : 'FAIL\n');
process.exit(ok ? 0 : 1);
