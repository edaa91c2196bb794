// REST client: bearer token from POST /api/login, kept for the browser session only.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function createApi(onUnauthorized) {
  let session = JSON.parse(sessionStorage.getItem('cw.session') ?? 'null');
  if (session && session.expiresAt <= Date.now()) session = null;

  async function request(method, path, body, withHeaders = false) {
    const headers = { accept: 'application/json' };
    if (session) headers.authorization = `Bearer ${session.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401 && session && path !== '/api/login') onUnauthorized();
    const type = res.headers.get('content-type') ?? '';
    const data = type.includes('json') ? await res.json() : await res.text();
    if (!res.ok) throw new ApiError(res.status, data?.code ?? 'HTTP_' + res.status, data?.message ?? String(data));
    return withHeaders ? { data, headers: res.headers } : data;
  }

  return {
    get session() {
      return session;
    },
    async login(username, password) {
      const r = await request('POST', '/api/login', { username, password });
      session = r;
      sessionStorage.setItem('cw.session', JSON.stringify(r));
      return r;
    },
    /**
     * Ends the session on the server too (POST /api/logout: the token is refused from then on, and
     * pages open with it elsewhere are disconnected), then here. Forgotten here whatever the answer:
     * a server that cannot be reached still leaves nothing behind in this browser.
     */
    logout() {
      const token = session?.token;
      session = null;
      sessionStorage.removeItem('cw.session');
      if (token) void fetch('/api/logout', { method: 'POST', headers: { authorization: `Bearer ${token}` }, keepalive: true }).catch(() => undefined);
    },
    get: (path) => request('GET', path),
    /**
     * A list that may be partial (issue 14, alerts partitioned by home): `missingHomes` lists the homes
     * whose owner did not answer (['*'] when the server said partial without naming them), else [].
     */
    async list(path) {
      const { data, headers } = await request('GET', path, undefined, true);
      const partial = headers.get('x-carewatch-partial') === 'true';
      const named = (headers.get('x-carewatch-missing-homes') ?? '').split(',').filter(Boolean);
      return { data, missingHomes: partial ? (named.length > 0 ? named : ['*']) : [] };
    },
    post: (path, body) => request('POST', path, body ?? {}),
    put: (path, body) => request('PUT', path, body ?? {}),
    del: (path) => request('DELETE', path),
    /** A file download needs the bearer header, so it goes through fetch and a blob URL. */
    async download(path, filename) {
      const res = await fetch(path, { headers: { authorization: `Bearer ${session?.token}` } });
      if (!res.ok) throw new ApiError(res.status, 'DOWNLOAD_FAILED', await res.text());
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = filename;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
  };
}
