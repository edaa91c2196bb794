import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { influxQuery, prepareInflux, testInflux, writeLines } from '../../support/influx-db.ts';
import { demoRegistry } from '../../support/registry.ts';
import { createTokenService } from '../../../alerts/http/token.ts';
import { createInfluxReader } from '../../../common/influx/reader.ts';
import { openapiRoutes } from '../../../alerts/http/openapi.ts';
import { liveRoutes, type ResidentCareStateOf } from '../../../alerts/http/live.ts';
import { historyRoutes } from '../../../alerts/http/history.ts';
import { statsRoutes } from '../../../alerts/http/stats.ts';
import type { Actor } from '../../../alerts/access.ts';
import type { AlertMessage } from '../../../contract/payloads.ts';

/**
 * The dashboard plugins on their own fastify instance, against a fresh database on the run's real
 * InfluxDB, with real login tokens (alerts/http/token.ts). Time is fixed so ranges are exact.
 */
export const NOW = Date.UTC(2026, 10, 15, 4, 0, 0); // 2026-11-15 12:00 China Standard Time

export interface DashboardFixture {
  readonly app: FastifyInstance;
  readonly codes: string[];
  readonly database: string;
  write(lines: string[]): Promise<void>;
  /** Runs one InfluxQL statement on the fixture's database (e.g. the downsampling over a span). */
  query(statement: string): Promise<void>;
  auth(username: string): { authorization: string };
  close(): Promise<void>;
}

const tags = (t: Record<string, string>): string => Object.entries(t).map(([k, v]) => `,${k}=${v}`).join('');
const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function telemetryLine(deviceId: string, ts: number, metrics: Record<string, number | boolean>): string {
  const d = demoRegistry().device(deviceId);
  if (!d) throw new Error(`no device ${deviceId}`);
  const fields = Object.entries(metrics).map(([k, v]) => `${k}=${typeof v === 'boolean' ? String(v) : v}`).join(',');
  return `telemetry${tags({ home: d.homeId, device: d.id, kind: d.kind, room: d.roomId, ...(d.residentId ? { resident: d.residentId } : {}) })} ${fields},seq=1i ${ts}000000`;
}

export function statusLine(deviceId: string, ts: number, online: boolean): string {
  const d = demoRegistry().device(deviceId);
  if (!d) throw new Error(`no device ${deviceId}`);
  return `status${tags({ home: d.homeId, device: d.id, kind: d.kind })} online=${online} ${ts}000000`;
}

/** The same point layout as alerts/persistence/alert-store.ts alertRecord. */
export function alertLine(a: AlertMessage): string {
  return `alert${tags({ home: a.homeId, category: a.category, rule: a.rule, state: a.state })} id=${q(a.id)},version=${a.version}i,json=${q(JSON.stringify(a))} ${a.ts}000${String(a.version).padStart(3, '0')}`;
}

export function careActionLine(homeId: string, residentId: string, action: string, ts: number): string {
  return `care_action${tags({ home: homeId, resident: residentId, action })} by="staff-${homeId}",json="{}" ${ts}000000`;
}

export async function dashboardFixture(care: ResidentCareStateOf = () => undefined): Promise<DashboardFixture> {
  const { url, database } = testInflux('dash');
  await prepareInflux(url, database);
  const registry = demoRegistry();
  const tokens = createTokenService('fixture-secret', 3600);
  const influx = createInfluxReader({ url, database });
  const codes: string[] = [];
  const actorOf = (req: FastifyRequest): Actor | undefined => {
    const h = req.headers.authorization;
    return typeof h === 'string' && h.startsWith('Bearer ') ? tokens.verify(h.slice(7), NOW) : undefined;
  };
  const app = Fastify({ logger: false });
  await app.register(openapiRoutes, { title: 'carewatch test' });
  const deps = { registry, influx, actorOf, now: () => NOW, countError: (c: string) => void codes.push(c) };
  await app.register(liveRoutes, { ...deps, residentCareState: care });
  await app.register(historyRoutes, deps);
  await app.register(statsRoutes, deps);
  await app.ready();
  return {
    app,
    codes,
    database,
    async write(lines) {
      await writeLines(url, database, lines, 'ns');
    },
    async query(statement) {
      await influxQuery(url, database, statement);
    },
    auth(username) {
      const u = registry.user(username);
      if (!u) throw new Error(`no user ${username}`);
      const { token } = tokens.issue({ username, role: u.role, ...(u.homeId ? { homeId: u.homeId } : {}) }, NOW);
      return { authorization: `Bearer ${token}` };
    },
    close: () => app.close(),
  };
}
