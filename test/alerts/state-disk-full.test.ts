import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { deviceTopic } from '../../contract/topics.ts';
import { testInflux } from '../support/influx-db.ts';
import { fillDisk, tinyDiskForFile } from '../support/tiny-disk.ts';
import { useBrokerAndWatcher } from './support/aedes.ts';
import { startAlerts, until } from './support/harness.ts';

/**
 * The alerts process with its state directory on a real tmpfs that fills up (root only; skipped
 * elsewhere). A fire alarm raised while the disk is full still reaches the MQTT alerts topic; the
 * state that cannot be saved is on /health (ALERTS_JOURNAL_IO, and ALERTS_SNAPSHOT_FAILED, which
 * was only a log line before session 21); once there is room both clear without a restart and the
 * snapshot holds the alarm.
 */
const disk = tinyDiskForFile('1m');
const influx = testInflux('alerts_disk_full');
const clock = createManualClock();
const bench = useBrokerAndWatcher('h01');

it('raises and publishes a fire alarm on a full disk, says so on /health, and saves it once there is room', async (ctx) => {
  const d = disk();
  if (d === undefined) return ctx.skip();
  const stateDir = join(d.path, 'state');
  const a = await startAlerts({ influx, stateDir, clock, mqttUrl: bench.broker.url });
  const problems = async (): Promise<string[]> => ((await a.app.inject({ method: 'GET', url: '/health' })).json() as { problems?: string[] }).problems ?? [];
  try {
    const filler = fillDisk(d.path);
    await bench.device.publishAsync(deviceTopic('h01', 'h01-sd-r101', 'telemetry'), JSON.stringify({ ts: clock.now(), seq: 1, metrics: { smoke_obscuration_pct_per_m: 18 } }), { qos: 1 });
    const fire = await until(() => a.lifecycle.open()[0], 'fire alert');
    await until(() => bench.published.some((m) => m.id === fire.id) || undefined, 'the alarm on the MQTT alerts topic');
    // The snapshot's period passes: its save fails on the full disk.
    for (let i = 0; i < 3; i++) clock.advance(3_000);
    await until(async () => {
      const p = await problems();
      return (p.includes('ALERTS_JOURNAL_IO') && p.includes('ALERTS_SNAPSHOT_FAILED')) || undefined;
    }, 'both failures on /health');
    await rm(filler);
    await until(async () => {
      clock.advance(3_000);
      return (await problems()).length === 0 || undefined;
    }, '/health clear once there is room');
    const snapshot = JSON.parse(await readFile(join(stateDir, 'rule-states.json'), 'utf8')) as { open: Array<{ alert: { id: string } }> };
    expect(snapshot.open.map((s) => s.alert.id)).toEqual([fire.id]);
  } finally {
    await a.close();
  }
});
