import { readFile, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  // W3C Web App Manifest §"Media type registration".
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg',
};

/**
 * Maps a URL path to a file under `root`, or undefined when it would leave the root (`..`, encoded
 * `%2e%2e`, backslashes, NUL bytes). Pure, so the traversal rules are unit-testable.
 */
export function safePath(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0] ?? '');
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  if (decoded.split('/').some((seg) => seg === '..')) return undefined;
  const rel = decoded.replace(/^\/+/, '') || 'index.html';
  const base = resolve(root);
  const full = resolve(base, rel.endsWith('/') ? `${rel}index.html` : rel);
  return full.startsWith(base + sep) ? full : undefined;
}

/** Serves the dashboard's static files by path (never by import: processes stay apart). */
export function registerStaticFiles(app: FastifyInstance, root: string): void {
  const notFound = { code: 'API_NOT_FOUND', message: 'no such file' };
  app.get('/*', async (req, reply) => {
    const path = safePath(root, req.url);
    if (path === undefined) return reply.status(404).send(notFound);
    try {
      if (!(await stat(path)).isFile()) return reply.status(404).send(notFound);
      const body = await readFile(path);
      void reply
        .header('content-type', TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream')
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff');
      // The service worker (dashboards/app/sw.js): scope the whole origin, never kept in the HTTP
      // cache, so a fixed worker reaches every phone on its next visit (browsers cap it at 24 h).
      if (path === resolve(root, 'sw.js')) void reply.header('service-worker-allowed', '/').header('cache-control', 'no-store, max-age=0');
      return reply.send(body);
    } catch {
      return reply.status(404).send(notFound);
    }
  });
}
