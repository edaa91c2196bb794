import { startPipeline } from './ingest.ts';
import { telemetryCount } from './lib/influx.ts';
import { median } from './lib/stats.ts';
import { sharedResults, type BenchContext, type BenchResult, type Benchmark, type Row } from './lib/context.ts';
import { sleep } from './lib/sleep.ts';

/**
 * 5. Backlog drain: traffic at a steady live rate; InfluxDB is killed for `outageMs` (ingest spools),
 * then restarted while the live traffic continues. The drain multiple is
 *   (backlog built during the outage / time to drain it) / live rate = outageMs / drainMs,
 * where "drained" means the spool is back to its pre-outage level. Every message must end stored.
 */
export const drainBenchmark: Benchmark = {
  name: 'drain',
  title: 'Backlog drain after an InfluxDB outage, live traffic continuing',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const live = ctx.quick ? 2_000 : Math.round(Math.min(5_000, (sharedResults.maxSustained ?? 10_000) / 4));
    const preMs = ctx.quick ? 3_000 : 10_000;
    const outageMs = ctx.quick ? 8_000 : 30_000;
    const drainBoundMs = ctx.quick ? 30_000 : 120_000;
    const runs: Array<{ drainMs: number; firstWriteMs: number; multiple: number; netMultiple: number; peakSpoolBytes: number; baselineSpoolBytes: number; sent: number; stored: number }> = [];
    for (let r = 0; r < ctx.runs; r++) {
      ctx.log(`drain run ${r + 1}/${ctx.runs}: ${live} msg/s, InfluxDB down ${outageMs / 1000} s`);
      const s = await startPipeline(ctx, ctx.quick ? 200 : 2_000, 'drain');
      try {
        const traffic = s.lg.run({ rate: live, warmupMs: 0, durationMs: preMs + outageMs + drainBoundMs + 5_000, drainMs: 10_000, qos: 1, window: 100, expectDeliveries: false });
        await sleep(preMs / 2);
        let baseline = 0;
        for (let i = 0; i < 5; i++) {
          baseline = Math.max(baseline, (await s.ingest.stats()).spool.bytes);
          await sleep(preMs / 10);
        }
        ctx.log(`drain: spool baseline ${baseline} B; stopping InfluxDB`);
        await s.influx.stop();
        await sleep(outageMs);
        const peak = (await s.ingest.stats()).spool.bytes;
        await s.influx.start();
        const t0 = performance.now();
        ctx.log(`drain: InfluxDB back; spool ${peak} B`);
        let drainMs = Number.NaN;
        // When the spool first shrank: ingest's retry back-off found InfluxDB back.
        let firstWriteMs = Number.NaN;
        // Drained: spool back within one second of live traffic (150 B/msg) of its pre-outage level.
        while (performance.now() - t0 < drainBoundMs) {
          const b = (await s.ingest.stats()).spool.bytes;
          if (Number.isNaN(firstWriteMs) && b < peak) firstWriteMs = performance.now() - t0;
          if (b <= baseline + live * 150) {
            drainMs = performance.now() - t0;
            break;
          }
          await sleep(100);
        }
        ctx.log(`drain: drained in ${Math.round(drainMs)} ms (first write after ${Math.round(firstWriteMs)} ms)`);
        await s.lg.stopRun();
        const res = await traffic;
        let stored = 0;
        const deadline = performance.now() + 30_000;
        while (performance.now() < deadline) {
          stored = await telemetryCount(s.influx.url, s.db);
          if (stored >= res.sent) break;
          await sleep(250);
        }
        // Net: the backlog's messages over the time writes were actually flowing. The backlog drains
        // at (multiple + 1) × live while live traffic keeps arriving; the multiple counts the surplus.
        const netMs = drainMs - firstWriteMs;
        runs.push({ drainMs, firstWriteMs, multiple: outageMs / drainMs, netMultiple: outageMs / Math.max(netMs, 100), peakSpoolBytes: peak, baselineSpoolBytes: baseline, sent: res.sent, stored });
      } finally {
        await s.close();
      }
    }
    const multiple = median(runs.map((x) => x.multiple));
    const rows: Row[] = [
      { bench: 'drain', metric: `drain rate after ${outageMs / 1000} s outage at ${live} msg/s`, value: multiple, unit: '× live', target: '≥ 5× live rate', met: multiple >= 5 },
      { bench: 'drain', metric: 'time to drain', value: median(runs.map((x) => x.drainMs)), unit: 'ms', note: `first write ${Math.round(median(runs.map((x) => x.firstWriteMs)))} ms after InfluxDB answered (retry back-off)` },
      { bench: 'drain', metric: 'drain rate once writing (net of back-off)', value: median(runs.map((x) => x.netMultiple)), unit: '× live', note: 'resolution: the 100 ms poll' },
      { bench: 'drain', metric: 'messages lost (sent − stored)', value: median(runs.map((x) => Math.max(0, x.sent - x.stored))), unit: 'msgs', target: '0', met: runs.every((x) => x.stored >= x.sent) },
    ];
    return { rows, detail: { live, preMs, outageMs, runs } };
  },
};
