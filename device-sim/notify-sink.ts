import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/logger.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';

/**
 * The demo's notification receiver (issue 15): stands in for the outside world the alerts process
 * notifies — a signed webhook, a WeCom (企业微信) and a DingTalk (钉钉) group robot, an SMS gateway —
 * so that an operator running the demo SEES each notification arrive, with whom it was for. It
 * speaks each service's published request and reply format (docs/alerts.md "Notifications"),
 * checks the webhook's HMAC signature and DingTalk's 加签 when given their secrets, prints one
 * block per message to stdout and keeps the last ones for `GET /messages`. `PUT /control
 * {"failWith": 500}` makes it answer every post with that status (null: answer normally again), to
 * show retries and the degraded /health of a failing channel.
 *
 * Paths (config/notify-demo.json points at them): `POST /webhook/<name>`, `POST
 * /wecom/cgi-bin/webhook/send?key=…`, `POST /dingtalk/robot/send?access_token=…[&timestamp&sign]`,
 * `POST /sms/send` (JSON `{to, content, id}`). It imports no process (processes never import each
 * other): the formats are the documented ones, not alerts' code.
 */

export type SinkKind = 'webhook' | 'wecom' | 'dingtalk' | 'sms';

export interface SinkMessage {
  readonly seq: number;
  readonly at: number;
  readonly kind: SinkKind;
  readonly path: string;
  /** Addresses (webhook, SMS) or @-mentioned phones (robots). */
  readonly to: readonly string[];
  /** Who those are in the registry's rosters, contacts and family: "王秀梅 (h01 护士 nurse)". */
  readonly toNames: readonly string[];
  readonly text: string;
  readonly homeId?: string;
  readonly incidentId?: string;
  readonly level?: number;
  /** Signature checked and right (true), wrong (the post was refused), or no secret to check with (undefined). */
  readonly verified?: boolean;
}

export interface NotifySinkConfig {
  readonly host: string;
  readonly port: number;
  /** The webhook channels' HMAC secret (checks `X-Carewatch-Signature`); absent: not checked. */
  readonly webhookSecret?: string;
  /** The DingTalk robot's 加签 secret; absent: not checked. */
  readonly dingtalkSecret?: string;
  /** Messages kept for GET /messages. */
  readonly keep?: number;
}

export interface NotifySinkDeps {
  readonly config: NotifySinkConfig;
  readonly registry: RegistryIndex;
  readonly logger: Logger;
  /** Where the readable blocks go (stdout in main). */
  readonly print: (text: string) => void;
  /** Time for signature windows and stamps (tests pass their manual clock). */
  readonly now?: () => number;
}

export interface NotifySink {
  start(): Promise<void>;
  close(): Promise<void>;
  readonly port: number;
  readonly url: string;
  messages(): readonly SinkMessage[];
  /** Answer every post with this status (undefined: normally). */
  failWith(status: number | undefined): void;
}

const MAX_BODY = 256 * 1024;
/** A signed webhook older or newer than this is refused (replay), as docs/alerts.md tells receivers to. */
const SIGNATURE_TOLERANCE_S = 300;
/** DingTalk refuses a timestamp more than an hour off (open.dingtalk.com 自定义机器人安全设置 加签). */
const DINGTALK_TOLERANCE_MS = 3_600_000;

function verifyWebhook(secret: string, header: string, body: string, nowS: number): boolean {
  const parts = new Map(header.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const));
  const t = Number(parts.get('t'));
  if (!Number.isInteger(t) || Math.abs(nowS - t) > SIGNATURE_TOLERANCE_S) return false;
  const expected = Buffer.from(`t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`);
  const given = Buffer.from(header);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

function verifyDingTalk(secret: string, timestamp: string | null, sign: string | null, nowMs: number): boolean {
  const ts = Number(timestamp);
  if (timestamp === null || sign === null || !Number.isInteger(ts) || Math.abs(nowMs - ts) > DINGTALK_TOLERANCE_MS) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${ts}\n${secret}`).digest('base64'));
  const given = Buffer.from(sign);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

const KIND_LABEL: Readonly<Record<SinkKind, string>> = { webhook: 'Webhook', wecom: '企业微信 WeCom', dingtalk: '钉钉 DingTalk', sms: '短信 SMS' };

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

export function createNotifySink(deps: NotifySinkDeps): NotifySink {
  const { config, registry, logger } = deps;
  const now = deps.now ?? Date.now;
  const keep = config.keep ?? 500;
  const kept: SinkMessage[] = [];
  let seq = 0;
  let failing: number | undefined;
  let server: Server | undefined;
  let port = 0;

  /** Phone or address → who that is, from the registry's rosters, providers, family and bureau. */
  const people = new Map<string, string>();
  const note = (keys: Array<string | undefined>, label: string): void => {
    for (const k of keys) if (k !== undefined && !people.has(k)) people.set(k, label);
  };
  for (const r of registry.site.rosters ?? []) for (const p of [...r.people, ...r.directors]) note([p.phone, p.id, ...Object.values(p.addresses ?? {})], `${p.name} (${r.homeId} ${p.role})`);
  for (const pv of registry.site.providers ?? []) for (const p of [...pv.people, ...pv.managers]) note([p.phone, p.id, ...Object.values(p.addresses ?? {})], `${p.name} (${pv.id} ${p.role})`);
  for (const h of registry.site.homes) for (const f of h.familyContacts ?? []) note([f.phone, f.id, ...Object.values(f.addresses ?? {})], `${f.name} (${h.id} ${f.relation})`);
  for (const p of registry.site.contacts?.bureau ?? []) note([p.phone, p.id, ...Object.values(p.addresses ?? {})], `${p.name} (bureau ${p.role})`);
  const nameOf = (to: string): string => people.get(to) ?? people.get(to.replace(/^\+86/, '')) ?? '?';

  function record(m: Omit<SinkMessage, 'seq' | 'at' | 'toNames'>): SinkMessage {
    const msg: SinkMessage = { ...m, seq: ++seq, at: now(), toNames: m.to.map(nameOf) };
    kept.push(msg);
    if (kept.length > keep) kept.splice(0, kept.length - keep);
    const who = msg.to.length > 0 ? msg.to.map((t, i) => `${t} ${msg.toNames[i] ?? ''}`).join(', ') : '(group, nobody @-mentioned)';
    const head = `[notify-sink] #${msg.seq} ${new Date(msg.at).toISOString()} ${KIND_LABEL[msg.kind]} ${msg.path} → ${who}${msg.verified === true ? ' [signature ok]' : ''}`;
    deps.print(`${head}\n${msg.text.split('\n').map((l) => `    ${l}`).join('\n')}\n`);
    return msg;
  }

  function reply(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  }

  function handlePost(req: IncomingMessage, res: ServerResponse, url: URL, body: string): void {
    const path = url.pathname;
    let parsed: Json;
    try {
      parsed = obj(JSON.parse(body));
    } catch {
      reply(res, 400, { code: 'SINK_BAD_JSON', message: 'the body is not JSON' });
      return;
    }
    if (path.startsWith('/webhook/')) {
      let verified: boolean | undefined;
      if (config.webhookSecret !== undefined) {
        verified = verifyWebhook(config.webhookSecret, String(req.headers['x-carewatch-signature'] ?? ''), body, Math.floor(now() / 1000));
        if (!verified) {
          logger.warn({ code: 'SINK_BAD_SIGNATURE', path }, 'webhook signature wrong or too old: refused');
          reply(res, 401, { code: 'SINK_BAD_SIGNATURE', message: 'signature wrong or outside the 5-minute window' });
          return;
        }
      }
      const to = (Array.isArray(parsed.recipients) ? parsed.recipients : []).map((r) => str(obj(r).address) ?? str(obj(r).personId) ?? '');
      const level = typeof parsed.level === 'number' ? parsed.level : undefined;
      const homeId = str(parsed.homeId);
      const incidentId = str(parsed.incidentId);
      const text = str(parsed.text) ?? '';
      const link = str(parsed.link) ?? '';
      // The text already ends with the link (alerts/notify/message.ts); print it once.
      record({ kind: 'webhook', path, to, text: [str(parsed.title) ?? '', text, text.includes(link) ? '' : link].filter((l) => l !== '').join('\n'), ...(homeId !== undefined ? { homeId } : {}), ...(incidentId !== undefined ? { incidentId } : {}), ...(level !== undefined ? { level } : {}), ...(verified !== undefined ? { verified } : {}) });
      reply(res, 200, { ok: true });
      return;
    }
    if (path.startsWith('/wecom/')) {
      if (url.searchParams.get('key') === null) {
        reply(res, 200, { errcode: 93000, errmsg: 'invalid webhook url' });
        return;
      }
      const text = str(obj(parsed.text).content) ?? str(obj(parsed.markdown).content) ?? '';
      record({ kind: 'wecom', path, to: strs(obj(parsed.text).mentioned_mobile_list), text });
      reply(res, 200, { errcode: 0, errmsg: 'ok' });
      return;
    }
    if (path.startsWith('/dingtalk/')) {
      let verified: boolean | undefined;
      if (config.dingtalkSecret !== undefined) {
        verified = verifyDingTalk(config.dingtalkSecret, url.searchParams.get('timestamp'), url.searchParams.get('sign'), now());
        if (!verified) {
          logger.warn({ code: 'SINK_BAD_SIGNATURE', path }, 'DingTalk sign wrong or too old: refused');
          // DingTalk's own answer to a bad 加签.
          reply(res, 200, { errcode: 310000, errmsg: 'sign not match' });
          return;
        }
      }
      const text = str(obj(parsed.text).content) ?? str(obj(parsed.markdown).text) ?? '';
      record({ kind: 'dingtalk', path, to: strs(obj(parsed.at).atMobiles), text, ...(verified !== undefined ? { verified } : {}) });
      reply(res, 200, { errcode: 0, errmsg: 'ok' });
      return;
    }
    if (path.startsWith('/sms/')) {
      const to = str(parsed.to);
      const content = str(parsed.content);
      if (to === undefined || content === undefined) {
        reply(res, 400, { code: 'SINK_BAD_SMS', message: 'an SMS needs "to" and "content"' });
        return;
      }
      record({ kind: 'sms', path, to: [to], text: content });
      reply(res, 200, { code: 0, message: 'accepted', id: str(parsed.id) ?? '' });
      return;
    }
    reply(res, 404, { code: 'SINK_NOT_FOUND', message: 'POST /webhook/<name>, /wecom/…, /dingtalk/…, /sms/…' });
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://sink');
      const body = Buffer.concat(chunks).toString('utf8');
      try {
        if (req.method === 'GET' && url.pathname === '/messages') return reply(res, 200, { messages: kept });
        if (req.method === 'GET' && url.pathname === '/healthz') return reply(res, 200, { status: 'ok', problems: [] });
        if (req.method === 'PUT' && url.pathname === '/control') {
          const status = obj(JSON.parse(body)).failWith;
          if (status !== null && (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599)) return reply(res, 400, { code: 'SINK_BAD_REQUEST', message: 'failWith: an HTTP status 200-599 or null' });
          failing = status === null ? undefined : status;
          deps.print(`[notify-sink] ${failing === undefined ? 'answering normally again' : `answering every post with HTTP ${failing}`}\n`);
          return reply(res, 200, { failWith: failing ?? null });
        }
        if (req.method !== 'POST') return reply(res, 405, { code: 'SINK_METHOD', message: 'POST a notification' });
        if (failing !== undefined) return reply(res, failing, { errcode: -1, errmsg: `demo: failing with ${failing}` });
        handlePost(req, res, url, body);
      } catch (err) {
        logger.warn({ err, code: 'SINK_BAD_REQUEST' }, 'bad request');
        reply(res, 400, { code: 'SINK_BAD_REQUEST', message: (err as Error).message });
      }
    });
  }

  return {
    get port() {
      return port;
    },
    get url() {
      return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    },
    async start() {
      server = createServer(handle);
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(config.port, config.host, () => resolve());
      });
      port = (server.address() as AddressInfo).port;
    },
    async close() {
      const s = server;
      server = undefined;
      if (s === undefined) return;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
    messages: () => kept,
    failWith(status) {
      failing = status;
    },
  };
}
