import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.ts';
import { byLabel, counterFrom, createMetricsRegistry, createOpsServer, gaugeFrom, healthzReply, labelledCounterFrom, labelledGaugeFrom, type Sample } from '../../common/metrics.ts';
import { parseExposition } from '../metrics/exposition.ts';

const silent = createLogger('metrics-test', 'silent');

describe('common/metrics', () => {
  it('metrics read from running totals follow them at each scrape, as counter and gauge types', async () => {
    const registry = createMetricsRegistry();
    let total = 0;
    let depth = 7;
    const rejected: Record<string, number> = {};
    counterFrom({ registry, name: 'x_total', help: 'x' }, () => total);
    gaugeFrom({ registry, name: 'depth', help: 'depth' }, () => depth);
    labelledCounterFrom({ registry, name: 'rejected_total', help: 'by code', labelNames: ['code'] }, () => byLabel('code', rejected, ['A', 'B']));
    labelledGaugeFrom({ registry, name: 'open', help: 'by state', labelNames: ['state'] }, (): Array<Sample<'state'>> => [[{ state: 'raised' }, depth - 7]]);

    let m = parseExposition(await registry.metrics());
    expect(m.types.get('carewatch_x_total')).toBe('counter');
    expect(m.types.get('carewatch_depth')).toBe('gauge');
    expect(m.value('carewatch_x_total')).toBe(0);
    expect(m.value('carewatch_rejected_total', { code: 'A' })).toBe(0);
    expect(m.value('carewatch_rejected_total', { code: 'B' })).toBe(0);

    total = 5;
    depth = 9;
    rejected.A = 2;
    rejected.C = 1;
    m = parseExposition(await registry.metrics());
    expect(m.value('carewatch_x_total')).toBe(5);
    expect(m.value('carewatch_depth')).toBe(9);
    expect(m.value('carewatch_rejected_total', { code: 'A' })).toBe(2);
    expect(m.value('carewatch_rejected_total', { code: 'B' })).toBe(0);
    expect(m.value('carewatch_rejected_total', { code: 'C' })).toBe(1);
    expect(m.value('carewatch_open', { state: 'raised' })).toBe(2);
    // Node's own: event-loop lag among prom-client's defaults, in this registry only.
    expect(m.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('two registries in one Node process do not collide', async () => {
    const a = createMetricsRegistry();
    const b = createMetricsRegistry();
    counterFrom({ registry: a, name: 'same_total', help: 'a' }, () => 1);
    counterFrom({ registry: b, name: 'same_total', help: 'b' }, () => 2);
    expect(parseExposition(await a.metrics()).value('carewatch_same_total')).toBe(1);
    expect(parseExposition(await b.metrics()).value('carewatch_same_total')).toBe(2);
  });

  it('healthz: 200 ok without problems, 503 with them', () => {
    expect(healthzReply([])).toEqual({ statusCode: 200, body: { status: 'ok', problems: [] } });
    expect(healthzReply(['X_DOWN'])).toEqual({ statusCode: 503, body: { status: 'unhealthy', problems: ['X_DOWN'] } });
  });

  it('the ops server answers GET and HEAD of /metrics and /healthz, 404 otherwise, and closes its port', async () => {
    const registry = createMetricsRegistry();
    let problems: string[] = [];
    const ops = createOpsServer({ host: '127.0.0.1', port: 0, registry, problems: () => problems, logger: silent });
    await ops.start();
    const base = `http://127.0.0.1:${ops.port}`;
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get('content-type')).toBe(registry.contentType);
    parseExposition(await metrics.text());
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    problems = ['SOMETHING_WRONG'];
    const sick = await fetch(`${base}/healthz?probe=1`);
    expect(sick.status).toBe(503);
    expect(await sick.json()).toEqual({ status: 'unhealthy', problems: ['SOMETHING_WRONG'] });
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(503);
    expect((await fetch(`${base}/other`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(404);
    await ops.close();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe('the exposition reader used by these tests', () => {
  it('accepts the format and refuses what is not', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{code="X",q="a\\"b"} 3\n# HELP h H.\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 0.5\nh_count 1\n';
    const m = parseExposition(ok);
    expect(m.value('a_total', { code: 'X' })).toBe(3);
    expect(m.samples[0]?.labels.q).toBe('a"b');
    expect(m.value('h_bucket', { le: '+Inf' })).toBe(1);
    for (const bad of [
      'a_total 3\n', // no TYPE
      '# TYPE a_total counter\na_total 3\n', // no HELP
      '# HELP a A.\n# TYPE a gauge\na{x=y} 1\n', // unquoted label value
      '# HELP a A.\n# TYPE a gauge\na one\n', // not a number
      '# HELP a A.\n# TYPE a gauge\na 1', // no final newline
      '# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n', // TYPE twice
    ]) {
      expect(() => parseExposition(bad), JSON.stringify(bad)).toThrow();
    }
  });
});
