import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../common/clock.ts';
import { testInflux } from '../support/influx-db.ts';
import { startAlerts, tempDir } from './support/harness.ts';

const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
afterAll(async () => Promise.all(dirs.map((d) => d.remove())));

describe('alerts close()', () => {
  it('runs every step even when one throws, then rethrows', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const a = await startAlerts({ influx: testInflux('alerts_close'), stateDir: dir.path, clock: createManualClock() });
    const port = a.port;
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    // A fault a real lifecycle cannot make on demand: its close throws.
    a.lifecycle.close = () => {
      throw new Error('lifecycle close failed');
    };
    await expect(a.close()).rejects.toThrow('lifecycle close failed');
    // Later steps still ran: the HTTP server no longer listens.
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });
});
