import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { bearerToken } from './bearer.ts';
import type { Logger } from './logger.ts';

/**
 * Prometheus metrics and health for every process (docs/architecture.md "Metrics and health").
 *
 * Each process owns one Registry (never prom-client's global one: tests run several processes in
 * one Node process, and a second registration of a name in the global registry throws). Values
 * are read from the process's existing stats() at scrape time (`collect`), so the message paths do
 * no new work for metrics; only latencies that exist nowhere else (ingest's InfluxDB writes) are
 * observed where they happen.
 */

/** One name family for all processes; the scrape job (or `job` label) tells them apart. */
export const METRIC_PREFIX = 'carewatch_';

/** Labels of one series and its value. */
export type Sample<L extends string> = readonly [labels: Readonly<Record<L, string>>, value: number];

/**
 * A registry with prom-client's default Node.js metrics: CPU, memory, handles, GC, and the event
 * loop's lag (`nodejs_eventloop_lag_seconds`, plus its percentiles), which is what a stalled alarm
 * path looks like from outside.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

interface Spec {
  readonly registry: Registry;
  /** Without the `carewatch_` prefix; a counter's name ends in `_total`. */
  readonly name: string;
  readonly help: string;
}

/**
 * A counter whose value is a running total the process already keeps (a stats() field). At each
 * scrape it is set to that total; a restart starts it at 0 again, which Prometheus' rate() reads
 * as a counter reset, as it should.
 */
export function counterFrom(spec: Spec, read: () => number): Counter {
  const counter: Counter = new Counter({
    name: METRIC_PREFIX + spec.name,
    help: spec.help,
    registers: [spec.registry],
    collect: () => {
      counter.reset();
      counter.inc(read());
    },
  });
  return counter;
}

/**
 * A labelled counter from running totals per label set. `keep` lists label sets always shown
 * (at 0 until they happen), so a dashboard's query has a series before the first rejection.
 */
export function labelledCounterFrom<L extends string>(spec: Spec & { readonly labelNames: readonly L[] }, read: () => Iterable<Sample<L>>): Counter<L> {
  const counter: Counter<L> = new Counter<L>({
    name: METRIC_PREFIX + spec.name,
    help: spec.help,
    labelNames: spec.labelNames,
    registers: [spec.registry],
    collect: () => {
      counter.reset();
      for (const [labels, value] of read()) counter.inc(labels as Partial<Record<L, string>>, value);
    },
  });
  return counter;
}

/** A gauge read at scrape time. */
export function gaugeFrom(spec: Spec, read: () => number): Gauge {
  const gauge: Gauge = new Gauge({
    name: METRIC_PREFIX + spec.name,
    help: spec.help,
    registers: [spec.registry],
    collect: () => gauge.set(read()),
  });
  return gauge;
}

/** A labelled gauge read at scrape time; label sets missing from `read` are dropped (reset). */
export function labelledGaugeFrom<L extends string>(spec: Spec & { readonly labelNames: readonly L[] }, read: () => Iterable<Sample<L>>): Gauge<L> {
  const gauge: Gauge<L> = new Gauge<L>({
    name: METRIC_PREFIX + spec.name,
    help: spec.help,
    labelNames: spec.labelNames,
    registers: [spec.registry],
    collect: () => {
      gauge.reset();
      for (const [labels, value] of read()) gauge.set(labels as Partial<Record<L, string>>, value);
    },
  });
  return gauge;
}

/** `{ CODE: n }` (a stats() record of counts) → samples under one label, with `keep` at 0 when absent. */
export function byLabel<L extends string>(label: L, counts: Readonly<Partial<Record<string, number>>>, keep: readonly string[] = []): Array<Sample<L>> {
  const out = new Map<string, number>(keep.map((k) => [k, 0]));
  for (const [k, v] of Object.entries(counts)) if (v !== undefined) out.set(k, v);
  return [...out].map(([k, v]) => [{ [label]: k } as Record<L, string>, v] as const);
}

// ---- /healthz ---------------------------------------------------------------------------

/**
 * The liveness/readiness answer every process gives on GET /healthz: 200 `{"status":"ok","problems":[]}`
 * when healthy, 503 `{"status":"unhealthy","problems":["CODE", …]}` when not. The problems are the
 * process's own health logic (stable codes); the detailed bodies stay on each process's /health.
 */
export interface HealthzReply {
  readonly statusCode: 200 | 503;
  readonly body: { readonly status: 'ok' | 'unhealthy'; readonly problems: readonly string[] };
}

export function healthzReply(problems: readonly string[]): HealthzReply {
  return problems.length === 0 ? { statusCode: 200, body: { status: 'ok', problems: [] } } : { statusCode: 503, body: { status: 'unhealthy', problems: [...problems] } };
}

/**
 * Who may read a process's metrics and detailed health (/metrics; alerts' and ingest's /health and
 * /stats). They say what a site is doing (messages and alerts per home, who is connected, what is
 * failing) and alerts serves them on the page's own port, open to every browser that reaches it.
 * With CAREWATCH_METRICS_TOKEN a scraper sends it as a bearer token (Prometheus'
 * `authorization: { credentials_file }`); without it production does not serve them at all, and
 * development serves them to anyone (as before). /healthz (status and problem codes only, what
 * container and load-balancer health checks read) is always open.
 */
export interface MetricsAccess {
  readonly token?: string | undefined;
  readonly production: boolean;
}

export type MetricsVerdict = 'ok' | 'unauthorized' | 'disabled';

/** Whether a request with this Authorization header may read the metrics (MetricsAccess). */
export function metricsVerdict(authorization: string | undefined, access: MetricsAccess | undefined): MetricsVerdict {
  if (access === undefined) return 'ok';
  if (access.token === undefined) return access.production ? 'disabled' : 'ok';
  const given = Buffer.from(bearerToken(authorization) ?? '');
  const expected = Buffer.from(access.token);
  return given.length === expected.length && timingSafeEqual(given, expected) ? 'ok' : 'unauthorized';
}

/** The answer to a request metricsVerdict refused: 401 with a challenge, or 403 (production without a token). */
export function deniedReply(verdict: Exclude<MetricsVerdict, 'ok'>): { statusCode: 401 | 403; headers: Record<string, string>; body: { code: string; message: string } } {
  return verdict === 'unauthorized'
    ? { statusCode: 401, headers: { 'www-authenticate': 'Bearer realm="carewatch metrics"' }, body: { code: 'METRICS_AUTH_REQUIRED', message: 'send CAREWATCH_METRICS_TOKEN as a bearer token' } }
    : { statusCode: 403, headers: {}, body: { code: 'METRICS_DISABLED', message: 'metrics are not served in production without CAREWATCH_METRICS_TOKEN' } };
}

/** Answers a refused request on a node:http response; true when it was refused (and answered). */
export function refuseMetrics(req: IncomingMessage, res: ServerResponse, access: MetricsAccess | undefined): boolean {
  const verdict = metricsVerdict(req.headers.authorization, access);
  if (verdict === 'ok') return false;
  const r = deniedReply(verdict);
  res.writeHead(r.statusCode, { 'content-type': 'application/json', 'cache-control': 'no-store', ...r.headers });
  res.end(req.method === 'HEAD' ? undefined : JSON.stringify(r.body));
  return true;
}

export interface OpsEndpoints {
  readonly registry: Registry;
  /** Stable codes of what is wrong now; empty when healthy. */
  readonly problems: () => readonly string[];
  /** Who may read /metrics (undefined: anyone; embedded uses and tests). */
  readonly access?: MetricsAccess | undefined;
}

/**
 * Answers GET /metrics and GET /healthz on a node:http server; false for any other request (the
 * caller answers it). HEAD is answered like GET without a body, as monitors sometimes send it.
 */
export function handleOpsRequest(req: IncomingMessage, res: ServerResponse, ops: OpsEndpoints, logger: Logger): boolean {
  const path = (req.url ?? '').split('?')[0];
  if ((req.method !== 'GET' && req.method !== 'HEAD') || (path !== '/metrics' && path !== '/healthz')) return false;
  const head = req.method === 'HEAD';
  if (path === '/healthz') {
    const r = healthzReply(ops.problems());
    res.writeHead(r.statusCode, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(head ? undefined : JSON.stringify(r.body));
    return true;
  }
  if (refuseMetrics(req, res, ops.access)) return true;
  ops.registry.metrics().then(
    (text) => {
      res.writeHead(200, { 'content-type': ops.registry.contentType, 'cache-control': 'no-store' });
      res.end(head ? undefined : text);
    },
    (err: unknown) => {
      logger.error({ err, code: 'METRICS_COLLECT_FAILED' }, 'metrics collection failed');
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(head ? undefined : '{"error":"metrics collection failed"}');
    },
  );
  return true;
}

export interface OpsServer {
  start(): Promise<void>;
  close(): Promise<void>;
  /** The actual port once started (config may say 0). */
  readonly port: number | undefined;
}

/** A small HTTP listener with only /metrics and /healthz, for a process that has no HTTP server of its own (the broker). */
export function createOpsServer(deps: OpsEndpoints & { readonly host: string; readonly port: number; readonly logger: Logger }): OpsServer {
  let server: Server | undefined;
  return {
    get port() {
      const a = server?.address();
      return typeof a === 'object' && a !== null ? (a as AddressInfo).port : undefined;
    },
    async start() {
      const srv = createServer((req, res) => {
        if (handleOpsRequest(req, res, deps, deps.logger)) return;
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"not found: GET /metrics or /healthz"}');
      });
      server = srv;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(deps.port, deps.host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
    },
    async close() {
      const srv = server;
      server = undefined;
      if (srv === undefined || !srv.listening) return;
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}
