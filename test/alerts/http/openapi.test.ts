import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { Type } from '@sinclair/typebox';
import { dashboardFixture, type DashboardFixture } from './dashboard-fixture.ts';
import { openapiRoutes, openApiPath } from '../../../alerts/http/openapi.ts';

let fx: DashboardFixture;
beforeAll(async () => {
  fx = await dashboardFixture();
});
afterAll(() => fx.close());

type Doc = { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string; required: boolean; schema: { anyOf?: Array<{ const: string }>; pattern?: string } }>; responses: Record<string, { content?: Record<string, unknown> }>; security?: unknown[] }>> };

describe('GET /api/openapi.json', () => {
  it('describes every registered route from its schema, sibling plugins included', async () => {
    const res = await fx.app.inject({ url: '/api/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as Doc;
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(['/api', '/api/history', '/api/live/home/{homeId}', '/api/live/homes', '/api/openapi.json', '/api/stats', '/api/stats.csv']);
    const history = doc.paths['/api/history']!.get!;
    const metric = history.parameters!.find((p) => p.name === 'metric')!;
    expect(metric).toMatchObject({ in: 'query', required: false });
    expect(metric.schema.anyOf!.map((s) => s.const)).toContain('spo2_pct');
    expect(history.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(history.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403']));
    expect(doc.paths['/api/live/home/{homeId}']!.get!.parameters![0]).toMatchObject({ name: 'homeId', in: 'path', required: true });
    expect(Object.keys(doc.paths['/api/stats.csv']!.get!.responses['200']!.content!)).toEqual(['text/csv']);
    expect(JSON.stringify(doc)).not.toMatch(/HEAD|"head"/);
  });

  it('collects routes registered after it in any plugin, bodies included', async () => {
    const app = Fastify();
    await app.register(openapiRoutes, {});
    await app.register(async (child) => {
      child.post('/api/alerts/:id/ack', { schema: { body: Type.Object({ comment: Type.Optional(Type.String()) }) } }, async () => ({}));
    });
    const doc = (await app.inject({ url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, { requestBody?: unknown; parameters?: unknown[] }>> };
    expect(doc.paths['/api/alerts/{id}/ack']!.post).toMatchObject({ requestBody: { content: { 'application/json': { schema: { type: 'object' } } } }, parameters: [{ name: 'id', in: 'path' }] });
    await app.close();
  });

  it('serves a page at /api', async () => {
    const res = await fx.app.inject({ url: '/api' });
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body).toContain('/api/openapi.json');
    expect(openApiPath('/api/alerts/:id/audit')).toBe('/api/alerts/{id}/audit');
  });
});
