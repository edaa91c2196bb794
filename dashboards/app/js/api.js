// REST client: bearer token from POST /api/login, kept for the browser session only.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * `now` is the page's estimate of server time (tokens' times are the server's). The session kept:
 * POST /api/login's answer plus `issuedAt` (when its token was issued, for the renewal's schedule),
 * `sessionEndsAt` (the absolute limit, once a renewal told it) and `previous` (tokens this page held
 * before renewing, still unexpired: "Sign out" ends them too).
 */
export function createApi(onUnauthorized, now = () => Date.now()) {
  let session = JSON.parse(sessionStorage.getItem('cw.session') ?? 'null');
  if (session && session.expiresAt <= Date.now()) session = null;
  const keep = () => sessionStorage.setItem('cw.session', JSON.stringify(session));

  async function request(method, path, body, withHeaders = false, timeoutMs = undefined) {
    const headers = { accept: 'application/json' };
    if (session) headers.authorization = `Bearer ${session.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signal = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
    const res = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
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
      session = { ...r, issuedAt: now(), previous: [] };
      keep();
      return r;
    },
    /**
     * Swaps the token for a fresh one (POST /api/token/renew) before it expires. A refusal (401: the
     * token was signed out, the user changed) ends the session (onUnauthorized); a network or server
     * error throws and the caller tries again later. Undefined when the session changed meanwhile.
     */
    async renew() {
      const old = session;
      if (!old) return undefined;
      const r = await request('POST', '/api/token/renew');
      if (session !== old) return undefined;
      const previous = [...(old.previous ?? []), { token: old.token, expiresAt: old.expiresAt }].filter((p) => p.expiresAt > r.issuedAt);
      session = { ...old, token: r.token, expiresAt: r.expiresAt, issuedAt: r.issuedAt, sessionEndsAt: r.sessionEndsAt, previous };
      keep();
      return session;
    },
    /** The server no longer accepts the session (expired, signed out elsewhere): forgotten here. */
    forget() {
      session = null;
      sessionStorage.removeItem('cw.session');
    },
    /**
     * Ends the session on the server too (POST /api/logout: the token is refused from then on, and
     * pages open with it elsewhere are disconnected), then here. Forgotten here whatever the answer:
     * a server that cannot be reached still leaves nothing behind in this browser.
     */
    logout() {
      const tokens = session ? [session.token, ...(session.previous ?? []).map((p) => p.token)] : [];
      session = null;
      sessionStorage.removeItem('cw.session');
      // The tokens this page renewed away from too: each would otherwise stay valid until its expiry.
      for (const token of tokens) void fetch('/api/logout', { method: 'POST', headers: { authorization: `Bearer ${token}` }, keepalive: true }).catch(() => undefined);
    },
    get: (path) => request('GET', path),
    /** A poll: given up after `timeoutMs` (a link dead without a close never answers, nor fails). */
    poll: (path, timeoutMs) => request('GET', path, undefined, false, timeoutMs),
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
