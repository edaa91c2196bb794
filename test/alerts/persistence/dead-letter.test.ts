import { readFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { openInfluxDatabase } from '../../../common/influx/database.ts';
import { createAlertsMetrics } from '../../../alerts/metrics.ts';
import { createJournalWriter, deadLetterPathFor, type JournalStats } from '../../../alerts/persistence/journal-writer.ts';
import { influxQuery, testInflux } from '../../support/influx-db.ts';
import { tempDir, until } from '../support/harness.ts';

/**
 * A point the real InfluxDB 1.6 refuses for good (here a field type conflict: it writes the other
 * points of the batch and answers 400 "partial write: field type conflict … dropped=1", naming only
 * the first bad one) is set aside in the dead-letter file instead of being retried forever in front
 * of the records behind it; a retryable failure (down, 5xx) is still retried and dead-letters nothing.
 */

const logger = pino({ level: 'silent' });
const influx = testInflux('alerts_deadletter');
const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) s.close();
  await Promise.all(dirs.map((d) => d.remove()));
});

/** Recent timestamps (ns): the records retention policy keeps two years. */
const T = BigInt(Date.now()) * 1_000_000n;

async function newDir(): Promise<string> {
  const d = await tempDir();
  dirs.push(d);
  return d.path;
}

async function deadLetters(path: string): Promise<Array<Record<string, unknown>>> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function values(measurement: string): Promise<number[]> {
  const series = await influxQuery(influx.url, influx.database, `SELECT "v" FROM "${measurement}"`);
  return series.flatMap((s) => s.values.map((v) => v[1] as number)).sort((a, b) => a - b);
}

function rejectedMetric(stats: () => JournalStats): Promise<string> {
  const registry = createAlertsMetrics({
    openAlerts: () => [],
    openIncidents: () => [],
    mqtt: () => undefined,
    journal: stats,
    socketClients: () => 0,
    inputs: () => 0,
    ruleFailures: () => 0,
    disablementsInForce: () => 0,
    snapshotSeconds: () => 0,
  });
  return registry.getSingleMetricAsString('carewatch_alerts_points_rejected_total');
}

describe('journal writer dead letters', () => {
  it('writes the good points of a batch with a type-conflicting one, dead-letters only that one, and keeps flowing; a restart does not retry it', async () => {
    const dir = await newDir();
    const path = join(dir, 'alert-journal.jsonl');
    const dlPath = deadLetterPathFor(path);
    expect(dlPath).toBe(join(dir, 'alert-journal.dead-letter.jsonl'));
    const clock = createManualClock(Date.UTC(2026, 11, 5, 3, 0, 0));
    const db = openInfluxDatabase({ url: influx.url, database: influx.database });
    const w = createJournalWriter<{ n: number }>({ path, influx: db, clock, logger, retryMinMs: 100 });
    await w.start();
    // `v` becomes an integer field…
    w.append([{ lp: `conflict,home=h01 v=1i ${T + 1n}`, meta: { n: 1 } }]);
    await w.drained();
    // …so the float in the middle of the next batch conflicts; the records around it are fine.
    const bad = `conflict,home=h01 v=2.5 ${T + 3n}`;
    w.append([2, 3, 4, 5, 6].map((n) => ({ lp: n === 3 ? bad : `conflict,home=h0${n} v=${n}i ${T + BigInt(n)}`, meta: { n } })));
    await until(() => w.stats().pending === 0, 'the batch to leave the journal', 60_000);
    expect(await values('conflict')).toEqual([1, 2, 4, 5, 6]);
    const dl = await deadLetters(dlPath);
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ lp: bad, code: 'INFLUX_REJECTED', reason: 'type_conflict', t: clock.now() });
    expect(String(dl[0]?.error)).toContain('field type conflict');
    expect(w.stats()).toMatchObject({ pending: 0, failures: 0, rejected: { type_conflict: 1 }, deadLettered: 1, deadLetterLost: 0, written: 5 });
    expect(await rejectedMetric(() => w.stats())).toMatch(/carewatch_alerts_points_rejected_total\{reason="type_conflict"\} 1\b/);

    // Later records still flow.
    w.append([{ lp: `conflict,home=h07 v=7i ${T + 7n}`, meta: { n: 7 } }]);
    await until(() => w.stats().pending === 0, 'the later record', 60_000);
    expect(await values('conflict')).toEqual([1, 2, 4, 5, 6, 7]);
    await w.close();
    expect(await readFile(path, 'utf8')).toBe('');

    // A restart finds nothing to replay and sends nothing refused again.
    const w2 = createJournalWriter<{ n: number }>({ path, influx: db, clock, logger });
    await w2.start();
    expect(w2.pending()).toHaveLength(0);
    w2.append([{ lp: `conflict,home=h08 v=8i ${T + 8n}`, meta: { n: 8 } }]);
    await until(() => w2.stats().pending === 0, 'a record after the restart', 60_000);
    expect(w2.stats()).toMatchObject({ rejected: {}, deadLettered: 0 });
    await w2.close();
    expect(await deadLetters(dlPath)).toHaveLength(1);
    expect(await values('conflict')).toEqual([1, 2, 4, 5, 6, 7, 8]);
    db.close();
  });

  it('dead-letters several bad points of one batch, each once, whatever their kind', async () => {
    const dir = await newDir();
    const path = join(dir, 'j.jsonl');
    const clock = createManualClock(Date.UTC(2026, 11, 5, 3, 0, 0));
    const db = openInfluxDatabase({ url: influx.url, database: influx.database });
    const w = createJournalWriter<{ n: number }>({ path, influx: db, clock, logger });
    await w.start();
    w.append([{ lp: `multi,home=h01 v=1i ${T + 1n}`, meta: { n: 1 } }]);
    await w.drained();
    const lines = Array.from({ length: 20 }, (_, i) => `multi,home=h01 v=${i + 10}i ${T + BigInt(i + 10)}`);
    lines[4] = `multi,home=h01 v="text" ${T + 14n}`;
    lines[11] = 'multi,home=h01 this is not line protocol';
    lines[19] = `multi,home=h01 v=2.5 ${T + 29n}`;
    w.append(lines.map((lp, n) => ({ lp, meta: { n } })));
    await until(() => w.stats().pending === 0, 'the batch to leave the journal', 60_000);
    const dl = await deadLetters(deadLetterPathFor(path));
    expect(dl.map((d) => d.lp).sort()).toEqual([lines[4], lines[11], lines[19]].sort());
    expect(w.stats().rejected).toEqual({ type_conflict: 2, unparsable: 1 });
    expect((await values('multi')).length).toBe(1 + 17);
    await w.close();
    db.close();
  });

  it('keeps retrying while InfluxDB is unreachable or answers 503, and dead-letters nothing', async () => {
    // A proxy in front of the real InfluxDB: it refuses connections or answers 503 (a fault the real
    // server cannot make on demand), then passes through.
    const target = new URL(influx.url);
    let mode: 'reset' | '503' | 'pass' = 'reset';
    const proxy = createServer((c: Socket) => {
      if (mode === 'reset') return c.destroy();
      if (mode === '503') {
        c.once('data', () => c.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
        return;
      }
      const up = createConnection({ host: target.hostname, port: Number(target.port) });
      c.pipe(up).pipe(c);
      up.on('error', () => c.destroy());
      c.on('error', () => up.destroy());
    });
    servers.push(proxy);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;

    const dir = await newDir();
    const path = join(dir, 'j.jsonl');
    const clock = createManualClock(Date.UTC(2026, 11, 5, 3, 0, 0));
    const db = openInfluxDatabase({ url: `http://127.0.0.1:${port}`, database: influx.database });
    const w = createJournalWriter<{ n: number }>({ path, influx: db, clock, logger, retryMinMs: 100 });
    await w.start();
    w.append([1, 2, 3].map((n) => ({ lp: `outage,home=h01 v=${n}i ${T + BigInt(n)}`, meta: { n } })));
    await until(() => w.stats().failures >= 1, 'a failure while down', 60_000);
    mode = '503';
    for (let i = 1; i < 4; i++) {
      clock.advance(20_000);
      await until(() => w.stats().failures > i, `failure ${i + 1}`, 60_000);
    }
    expect(w.stats()).toMatchObject({ pending: 3, written: 0, rejected: {}, deadLettered: 0 });
    mode = 'pass';
    clock.advance(20_000);
    await until(() => w.stats().pending === 0, 'the records after InfluxDB came back', 60_000);
    expect(await values('outage')).toEqual([1, 2, 3]);
    expect(await deadLetters(deadLetterPathFor(path))).toHaveLength(0);
    await w.close();
    db.close();
  });

  it('bounds the dead-letter file: past it the point is counted as lost and reported, the journal still drains', async () => {
    const dir = await newDir();
    const path = join(dir, 'j.jsonl');
    const clock = createManualClock(Date.UTC(2026, 11, 5, 3, 0, 0));
    const db = openInfluxDatabase({ url: influx.url, database: influx.database });
    const w = createJournalWriter<{ n: number }>({ path, influx: db, clock, logger, deadLetterMaxBytes: 10 });
    await w.start();
    w.append([{ lp: `bounded,home=h01 v=1i ${T + 1n}`, meta: { n: 1 } }, { lp: `bounded,home=h01 v=1.5 ${T + 2n}`, meta: { n: 2 } }]);
    await until(() => w.stats().pending === 0, 'the batch to leave the journal', 60_000);
    expect(w.stats()).toMatchObject({ rejected: { type_conflict: 1 }, deadLettered: 0, deadLetterLost: 1 });
    expect(w.stats().problems).toContain('ALERTS_DEAD_LETTER_FULL');
    await w.close();
    db.close();
  });
});
