import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createAlerts, type Alerts } from '../../alerts/alerts.ts';
import { createCoverage, type CoverageSummary } from '../../alerts/home-coverage.ts';
import { defaultRules } from '../../alerts/rules/index.ts';
import { createManualClock } from '../../common/clock.ts';
import { freePort } from '../../common/influxd.ts';
import { scrape } from '../metrics/exposition.ts';
import { testInflux } from '../support/influx-db.ts';
import { demoRegistry } from '../support/registry.ts';
import { testAlertsConfig, until } from './support/harness.ts';

/**
 * Issue 14, home coverage (alerts/home-coverage.ts, docs/scaling.md "Home coverage"): two partitioned alerts
 * instances in this process, with real Redis and InfluxDB, on one manual clock. Each announces its
 * homes in Redis; a home of the registry that neither owns is reported on the /health of both, but
 * only after the grace period.
 */
const EVERY = 10_000;
const GRACE = 60_000;
const ALL = demoRegistry().site.homes.map((h) => h.id).sort();
// A database of its own: the SCAN of the owner keys must not see other tests' alerts instances.
const redisUrl = `${inject('redisUrl')}/11`;

type Health = { status: string; problems: string[]; coverage?: CoverageSummary };

describe('home coverage across partitioned alerts instances (real Redis)', () => {
  const influx = testInflux('coverage');
  const clock = createManualClock();
  const silent = pino({ level: 'silent' });
  let dir: string;
  const running: Alerts[] = [];

  async function start(instance: string, homes: readonly string[]): Promise<Alerts> {
    const a = createAlerts({
      config: testAlertsConfig(
        { influx, stateDir: join(dir, `state-${instance}`), mqttUrl: `mqtt://127.0.0.1:${await freePort()}` },
        { homeStateDir: join(dir, 'homes'), homes: homes.join(','), instance, redisUrl },
      ),
      registry: demoRegistry(),
      logger: silent,
      rules: defaultRules(),
      clock,
      mqtt: false,
      coverage: { everyMs: EVERY, ttlMs: 3 * EVERY, graceMs: GRACE },
    });
    await a.start();
    running.push(a);
    return a;
  }

  async function stop(a: Alerts): Promise<void> {
    await a.close();
    running.splice(running.indexOf(a), 1);
  }

  async function health(a: Alerts): Promise<Health> {
    return (await (await fetch(`http://127.0.0.1:${a.port}/health`)).json()) as Health;
  }

  /** Waits until every instance has assessed at the clock's current time. */
  async function assessed(...as: Alerts[]): Promise<Health[]> {
    return until(async () => {
      const hs = await Promise.all(as.map(health));
      return hs.every((h) => h.coverage?.checkedAt === clock.now()) ? hs : undefined;
    }, `coverage assessed at ${clock.now()}`);
  }

  /** Advances the clock one heartbeat at a time (each instance announces and assesses at each), `ms` in all. */
  async function advance(ms: number, ...as: Alerts[]): Promise<Health[]> {
    let hs = await assessed(...as);
    for (let t = 0; t < ms; t += EVERY) {
      clock.advance(EVERY);
      hs = await assessed(...as);
    }
    return hs;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'carewatch-coverage-'));
  });

  afterAll(async () => {
    for (const a of [...running]) await a.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a correct split is never a problem; an instance that closes leaves its homes unowned, reported after the grace period', async () => {
    const homesA = ALL.filter((_, i) => i % 2 === 0);
    const homesB = ALL.filter((_, i) => i % 2 === 1);
    const a = await start('cov-a', homesA);
    const b = await start('cov-b', homesB);
    // Long enough for the announcements of both to be seen, and twice the grace period.
    for (const h of await advance(2 * GRACE, a, b)) {
      expect(h.coverage).toMatchObject({ unowned: [], ownedTwice: [] });
      expect(h.problems).toEqual([]);
      expect(h.status).toBe('ok');
    }
    expect((await scrape(`http://127.0.0.1:${a.port}`)).value('carewatch_alerts_homes_unowned')).toBe(0);

    // B closes (its key is deleted at once): A sees its homes unowned at its next heartbeat; a
    // restart is not an alarm...
    await stop(b);
    const [during] = await advance(GRACE, a);
    expect(during?.coverage?.unowned).toEqual([]);
    expect(during?.status).toBe('ok');
    // ...until the grace period has passed.
    const [after] = await advance(EVERY, a);
    expect(after?.coverage?.unowned).toEqual(homesB);
    expect(after?.problems).toEqual(['ALERTS_HOME_UNOWNED']);
    expect(after?.status).toBe('degraded');
    expect((await scrape(`http://127.0.0.1:${a.port}`)).value('carewatch_alerts_homes_unowned')).toBe(homesB.length);

    // B back: covered again at the next heartbeat.
    const b2 = await start('cov-b', homesB);
    for (const h of await advance(EVERY, a, b2)) {
      expect(h.coverage?.unowned).toEqual([]);
      expect(h.status).toBe('ok');
    }
    await stop(a);
    await stop(b2);
  }, 120_000);

  it("a home left out of every instance's CAREWATCH_HOMES is reported by both after the grace period, not before", async () => {
    const left = 'h05';
    const a = await start('cov-a', ALL.filter((h, i) => i % 2 === 0 && h !== left));
    const b = await start('cov-b', ALL.filter((h, i) => i % 2 === 1 && h !== left));
    for (const h of await advance(GRACE - EVERY, a, b)) {
      expect(h.coverage?.unowned).toEqual([]);
      expect(h.status).toBe('ok');
    }
    for (const h of await advance(EVERY, a, b)) {
      expect(h.coverage?.unowned).toEqual([left]);
      expect(h.problems).toEqual(['ALERTS_HOME_UNOWNED']);
      expect(h.status).toBe('degraded');
    }
    await stop(a);
    await stop(b);
  }, 120_000);

  it('a home owned by two instances is reported after the grace period, with both', async () => {
    const a = await start('cov-a', ALL.filter((_, i) => i % 2 === 0));
    const b = await start('cov-b', [...ALL.filter((_, i) => i % 2 === 1), 'h01']);
    // A may have made its first assessment before B announced: one heartbeat more than the grace.
    for (const h of await advance(GRACE + EVERY, a, b)) {
      expect(h.coverage?.ownedTwice).toEqual([{ home: 'h01', instances: ['cov-a', 'cov-b'] }]);
      expect(h.problems).toEqual(['ALERTS_HOME_OWNED_TWICE']);
    }
    await stop(a);
    await stop(b);
  }, 120_000);

  it('close() returns with Redis away (its step waits in the offline queue): nothing is left running', async () => {
    const c = createCoverage({ redisUrl: `redis://127.0.0.1:${await freePort()}`, instance: 'gone', homes: ['h01'], registryHomes: ALL, clock, logger: silent });
    await c.start();
    clock.advance(EVERY);
    await c.close();
    expect(c.report().checkedAt).toBeUndefined();
  }, 20_000);
});
