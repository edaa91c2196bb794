import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SimError } from './errors.ts';
import { scenarioCatalogue } from './scenarios.ts';
import type { Simulator } from './simulator.ts';

/**
 * The simulator's tiny localhost control API (node:http), used by device-sim/cli.ts:
 *   POST   /scenario        {name, target, options?} → 200 {id, devices}
 *   DELETE /scenario/:idOrTarget                      → 200 {cleared}   (404 if nothing matched)
 *   POST   /online          {deviceId}                → 200 {changed}
 *   GET    /scenarios | /devices | /catalogue
 * Errors: {code, message} with the SimError codes. Bound to 127.0.0.1 by default: it is a test and
 * demo tool with no authentication, never to be exposed.
 */

const MAX_BODY = 16 * 1024;

export interface ControlServer {
  start(): Promise<void>;
  close(): Promise<void>;
  url(): string;
}

export interface ControlServerDeps {
  readonly simulator: Pick<Simulator, 'scenario' | 'devices'>;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A web page open on the same machine can send "simple" cross-origin POSTs (text/plain) to
 * 127.0.0.1 and would otherwise inject fires. Requiring application/json forces a CORS preflight,
 * which this server never answers; a Host check defeats DNS rebinding.
 */
function checkOrigin(req: IncomingMessage): void {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) throw new SimError('SIM_BAD_REQUEST', `host "${host}" refused: the control API is for this machine only`);
  if (req.method === 'POST' && !(req.headers['content-type'] ?? '').startsWith('application/json')) {
    throw new SimError('SIM_BAD_REQUEST', 'content-type must be application/json');
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new SimError('SIM_BAD_REQUEST', `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new SimError('SIM_BAD_REQUEST', 'body is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new SimError('SIM_BAD_REQUEST', 'body must be a JSON object');
  return json as Record<string, unknown>;
}

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > 200) throw new SimError('SIM_BAD_REQUEST', `"${key}" must be a non-empty string`);
  return v;
}

export function createControlServer(deps: ControlServerDeps): ControlServer {
  const { simulator: sim } = deps;
  const log = deps.logger.child({ component: 'control-api' });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    checkOrigin(req);
    if (req.method === 'POST' && path === '/scenario') {
      const body = await readJson(req);
      const options = body['options'] ?? {};
      if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new SimError('SIM_BAD_REQUEST', '"options" must be an object');
      const id = sim.scenario.start(str(body, 'name'), str(body, 'target'), options as Record<string, unknown>);
      const info = sim.scenario.list().find((s) => s.id === id);
      return send(res, 200, { id, devices: info?.devices ?? [] });
    }
    if (req.method === 'DELETE' && path.startsWith('/scenario/')) {
      const key = decodeURIComponent(path.slice('/scenario/'.length));
      const cleared = sim.scenario.clear(key);
      if (cleared === 0) throw new SimError('SIM_NOT_FOUND', `no active scenario with id or target "${key}"`);
      return send(res, 200, { cleared });
    }
    if (req.method === 'POST' && path === '/online') {
      const body = await readJson(req);
      return send(res, 200, { changed: sim.scenario.deviceOnline(str(body, 'deviceId')) });
    }
    if (req.method === 'GET' && path === '/scenarios') return send(res, 200, sim.scenario.list());
    if (req.method === 'GET' && path === '/devices') return send(res, 200, sim.devices());
    if (req.method === 'GET' && path === '/catalogue') return send(res, 200, scenarioCatalogue());
    send(res, 404, { code: 'SIM_NOT_FOUND', message: `no route ${req.method} ${path}` });
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof SimError) {
        log.warn({ code: err.code, err: err.message, url: req.url }, 'control request refused');
        send(res, err.status, { code: err.code, message: err.message });
      } else {
        log.error({ err }, 'control request failed');
        send(res, 500, { code: 'SIM_INTERNAL', message: (err as Error).message });
      }
    });
  });

  return {
    start: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(deps.port, deps.host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    url() {
      const a = server.address() as AddressInfo | null;
      return a ? `http://${deps.host}:${a.port}` : '';
    },
  };
}
