import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../common/influxd.ts';
import type { IngestStats } from '../../ingest/ingest.ts';
import { FIXTURE_RETENTION, testInflux } from '../support/influx-db.ts';
import { DEMO_SITE_PATH } from '../support/registry.ts';
import { INGEST_PASSWORD, startTestBroker, type TestBroker } from './support/aedes.ts';
import { spoolDir } from './support/ingest.ts';
import { exactlyOnceProblems, publishLoad, storedCount, storedSeqs } from './support/load.ts';
import { waitFor } from './support/wait.ts';
import { processArgv } from '../support/process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TOTAL = 10_000;
let broker: TestBroker | undefined;
const children: ChildProcess[] = [];
let dir: string | undefined;

function startChild(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, processArgv('ingest/main.ts'), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGKILL') process.stderr.write(`ingest child exited ${code} ${signal}: ${stderr}\n`);
  });
  children.push(child);
  return child;
}

async function health(port: number): Promise<IngestStats> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return (await res.json()) as IngestStats;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) {
    c.kill('SIGKILL');
    await exited(c);
  }
  await broker?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('ingest, acceptance: SIGKILL mid-stream', () => {
  it('stores all 10,000 messages exactly once when the process is killed and restarted on the same spool', async () => {
    const { url, database } = testInflux('crash');
    broker = await startTestBroker();
    dir = await spoolDir();
    const port = await freePort();
    const env = {
      CAREWATCH_REGISTRY: DEMO_SITE_PATH,
      CAREWATCH_MQTT_URL: broker.url,
      CAREWATCH_INGEST_PASSWORD: INGEST_PASSWORD,
      CAREWATCH_RETENTION_RAW_DAYS: String(FIXTURE_RETENTION.rawDays),
      CAREWATCH_INFLUX_URL: url,
      CAREWATCH_INFLUX_DB: database,
      CAREWATCH_SPOOL_DIR: dir,
      CAREWATCH_INGEST_HTTP_PORT: String(port),
      CAREWATCH_LOG_LEVEL: 'warn',
    };
    const first = startChild(env);
    await waitFor('first ingest subscribed', async () => (await health(port)).mqtt.subscribed);

    const load = await publishLoad(broker.url, TOTAL);
    // Kill it while messages are flowing in: some acknowledged and spooled, some not yet written.
    const atKill = await waitFor('ingest a third through', async () => {
      const h = await health(port);
      return h.received >= TOTAL / 3 ? h : undefined;
    }, 60_000, 5);
    first.kill('SIGKILL');
    await exited(first);
    const storedAtKill = await storedCount(url, database);
    // Really mid-stream: the killed process had not yet stored everything.
    expect(storedAtKill).toBeLessThan(TOTAL);
    process.stderr.write(`crash test: at kill received=${atKill.received} acked=${atKill.acked} written=${atKill.written}; stored after kill=${storedAtKill}\n`);

    const second = startChild(env);
    await load.done;
    await load.close();
    await waitFor('all points stored', async () => (await storedCount(url, database)) >= TOTAL, 90_000, 250);
    expect(exactlyOnceProblems(await storedSeqs(url, database), TOTAL)).toBe('');
    const s = await waitFor('spool drained', async () => {
      const h = await health(port);
      return h.spool.bytes === 0 ? h : undefined;
    });
    expect(s.rejectedTotal).toBe(0);
    // The restarted process received the rest, including redeliveries of what was never acknowledged.
    expect(s.received).toBeGreaterThan(0);
    process.stderr.write(`crash test: second process received=${s.received} acked=${s.acked} written=${s.written}\n`);

    // SIGTERM: a clean stop with exit code 0.
    second.kill('SIGTERM');
    expect(await exited(second)).toBe(0);
  });
});
