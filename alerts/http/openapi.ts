import type { FastifyInstance, RouteOptions } from 'fastify';

/**
 * GET /api/openapi.json — an OpenAPI 3.0 document built from the routes actually registered, from
 * their TypeBox (JSON Schema) schemas, collected with an onRoute hook; GET /api — a small page
 * linking to it. No new packages: TypeBox schemas are JSON Schema already.
 *
 * Register this plugin FIRST on the root instance: it is not encapsulated (like fastify-plugin's
 * skip-override) so its hook sees every route registered after it, in every child plugin.
 */

declare module 'fastify' {
  /** Documentation keywords in route schemas, read by this plugin (fastify itself ignores them). */
  interface FastifySchema {
    summary?: string;
    description?: string;
    produces?: readonly string[];
  }
}

export interface OpenApiOptions {
  readonly title?: string;
  readonly version?: string;
  /** Only routes under this prefix are described (default `/api`). */
  readonly prefix?: string;
}

type JsonSchema = Record<string, unknown>;
interface Collected {
  readonly method: string;
  readonly url: string;
  readonly schema: Record<string, unknown>;
}

/** Fastify `:param` → OpenAPI `{param}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** TypeBox schemas carry symbol keys (dropped by JSON) and JSON-Schema-only keywords OpenAPI 3.0 lacks. */
function clean(schema: unknown): JsonSchema {
  return JSON.parse(JSON.stringify(schema ?? {})) as JsonSchema;
}

function parameters(where: 'path' | 'query', schema: unknown): JsonSchema[] {
  const s = clean(schema);
  const props = (s.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(props).map(([name, p]) => {
    const { description, ...rest } = p;
    return { name, in: where, required: where === 'path' || required.has(name), ...(description !== undefined ? { description } : {}), schema: rest };
  });
}

export function buildOpenApi(routes: readonly Collected[], opts: OpenApiOptions): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const r of routes) {
    const op: JsonSchema = {};
    const s = r.schema;
    if (typeof s.summary === 'string') op.summary = s.summary;
    const params = [...(s.params ? parameters('path', s.params) : []), ...(s.querystring ? parameters('query', s.querystring) : [])];
    if (!s.params) {
      // Path parameters without a schema still have to be declared.
      for (const m of r.url.matchAll(/:([A-Za-z0-9_]+)/g)) params.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    }
    if (params.length > 0) op.parameters = params;
    if (s.body) op.requestBody = { required: true, content: { 'application/json': { schema: clean(s.body) } } };
    const responses: Record<string, JsonSchema> = {};
    const produces = Array.isArray(s.produces) ? (s.produces as string[]) : ['application/json'];
    for (const [code, schema] of Object.entries((s.response ?? {}) as Record<string, unknown>)) {
      const ok = code.startsWith('2');
      responses[code] = { description: ok ? 'OK' : 'Error', content: { [ok ? (produces[0] ?? 'application/json') : 'application/json']: { schema: clean(schema) } } };
    }
    if (Object.keys(responses).length === 0) responses['200'] = { description: 'OK' };
    op.responses = responses;
    if (r.url !== '/api/login' && r.url !== '/api/openapi.json' && r.url !== '/api') op.security = [{ bearer: [] }];
    const path = openApiPath(r.url);
    paths[path] = { ...(paths[path] ?? {}), [r.method.toLowerCase()]: op };
  }
  return {
    openapi: '3.0.3',
    info: { title: opts.title ?? 'carewatch API', version: opts.version ?? '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'token from POST /api/login' } } },
    paths,
  };
}

const PAGE = `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>carewatch API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;max-width:60rem}code{background:#eef}li{margin:.2rem 0}</style></head>
<body><h1>carewatch API</h1><p>OpenAPI 3: <a href="/api/openapi.json">/api/openapi.json</a></p><ul id="ops"></ul>
<script type="module">
const doc = await (await fetch('/api/openapi.json')).json();
const ul = document.getElementById('ops');
for (const [p, ops] of Object.entries(doc.paths)) for (const [m, op] of Object.entries(ops)) {
  const li = document.createElement('li');
  li.innerHTML = '<code></code> ';
  li.firstChild.textContent = m.toUpperCase() + ' ' + p;
  li.append(op.summary ?? '');
  ul.append(li);
}
</script></body></html>`;

export async function openapiRoutes(app: FastifyInstance, opts: OpenApiOptions): Promise<void> {
  const prefix = opts.prefix ?? '/api';
  const routes: Collected[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!route.url.startsWith(prefix)) return;
    for (const method of methods) {
      // fastify adds HEAD for every GET by itself; it is not part of the described API.
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      routes.push({ method, url: route.url, schema: (route.schema ?? {}) as Record<string, unknown> });
    }
  });
  let doc: JsonSchema | undefined;
  app.get('/api/openapi.json', { schema: { summary: 'This OpenAPI document' } }, async () => {
    doc ??= buildOpenApi(routes, opts);
    return doc;
  });
  app.get('/api', { schema: { summary: 'A page listing the API' } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
}

// Not encapsulated (what fastify-plugin does): the onRoute hook must see routes of sibling plugins.
(openapiRoutes as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
