import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/logger.ts';
import { createRejectionLog, type RejectionLog } from '../../common/rejection-log.ts';
import { ApiError } from '../../contract/api.ts';
import { AlertsError, fail, type AlertErrorCode, type Outcome } from '../errors.ts';
import { jsonPointer, SIGNATURE_HEADER, verifyWebhookSignature } from './adapters.ts';
import type { Notification } from './channel.ts';
import type { NotifyConfig, ReceiptStatus } from './config.ts';

/**
 * Delivery receipts of the SMS / voice gateway (issue 15, audit gap 6). A 2xx to the send request
 * says only that the gateway took the message; whether the phone got it, or whether the called
 * person answered, comes later in a callback. The gateway POSTs it to
 * `/api/notify/receipts/<channel id>`, signed with the channel's shared secret like our own webhook
 * (`X-Carewatch-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, ±5 min: no
 * replay; compared in constant time). No user token: the gateway is not a person.
 *
 * The book maps the gateway's message id (read from its send reply, `messageIdPointer`) back to the
 * incident, the person and the ladder level, and appends one `notify_receipt` entry to the
 * incident's audit per (message, status): a gateway that posts the same receipt again (they retry
 * until they see a 2xx) is answered 200 and recorded once. An unknown id, a bad signature, an
 * unknown channel or an unreadable body is refused with its code (alerts/errors.ts), counted
 * (carewatch_notify_receipts_rejected_total) and logged, rate-limited (common/rejection-log.ts).
 */

/**
 * How long a message id is kept for its receipt: 72 h. Operators hold an undeliverable SMS for its
 * validity period (3GPP TS 23.040 TP-Validity-Period, commonly set to 48–72 h by gateways) and
 * report it when it lapses. Bounded in count too: the oldest ids go first.
 */
export const RECEIPT_RETENTION_MS = 72 * 3_600_000;
export const RECEIPT_MAX_ENTRIES = 50_000;
/** A gateway may batch receipts (Aliyun posts a JSON array); more than this in one request is refused. */
export const RECEIPT_MAX_BATCH = 100;

export type ReceiptOutcome = 'recorded' | 'duplicate';

export interface ReceiptAuditFacts {
  readonly channel: string;
  readonly recipient: string;
  readonly status: ReceiptStatus;
  readonly escalationLevel: number;
  readonly reason: string;
}

export interface ReceiptBookDeps {
  readonly config: NotifyConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Appends `notify_receipt` to the incident's audit; false when the incident is no longer kept. */
  readonly audit: (incidentId: string, facts: ReceiptAuditFacts) => boolean;
  readonly retentionMs?: number;
  readonly maxEntries?: number;
  /**
   * Each receipt recorded (not duplicates), after its audit: a hook for the notifier to act on a
   * failed SMS or an unanswered call (issue 15 "keep trying until someone answers"); unused so far.
   */
  readonly onReceipt?: (incidentId: string, facts: ReceiptAuditFacts) => void;
}

export interface ReceiptBookStats {
  /** Receipts recorded, by `${channel}\u0000${status}`. */
  readonly receipts: ReadonlyMap<string, number>;
  readonly rejected: Readonly<Partial<Record<ReceiptRejection, number>>>;
  readonly duplicates: number;
}

export type ReceiptRejection = Extract<AlertErrorCode, `NOTIFY_RECEIPT_${string}`>;
export const RECEIPT_REJECTIONS: readonly ReceiptRejection[] = ['NOTIFY_RECEIPT_UNKNOWN_CHANNEL', 'NOTIFY_RECEIPT_BAD_SIGNATURE', 'NOTIFY_RECEIPT_BAD_BODY', 'NOTIFY_RECEIPT_UNKNOWN_MESSAGE'];

export interface ReceiptItemResult {
  readonly messageId?: string;
  readonly outcome: ReceiptOutcome | ReceiptRejection;
}

export interface ReceiptBook {
  /** A message the gateway accepted, under the id it gave (the SMS channel's onMessageId). */
  remember(channelId: string, msg: Notification, messageId: string): void;
  /** One callback: the channel, its signature header and the raw body. */
  handle(channelId: string, signature: string | undefined, rawBody: string): Outcome<readonly ReceiptItemResult[]>;
  stats(): ReceiptBookStats;
  close(): void;
}

interface Sent {
  readonly incidentId: string;
  readonly recipient: string;
  readonly level: number;
  readonly at: number;
  readonly seen: Set<ReceiptStatus>;
}

type ReceiptChannel = Extract<NotifyConfig['channels'][number], { type: 'sms' }> & { receipts: NonNullable<Extract<NotifyConfig['channels'][number], { type: 'sms' }>['receipts']> };

export function createReceiptBook(deps: ReceiptBookDeps): ReceiptBook {
  const { clock } = deps;
  const logger = deps.logger.child({ component: 'notify-receipts' });
  const retentionMs = deps.retentionMs ?? RECEIPT_RETENTION_MS;
  const maxEntries = deps.maxEntries ?? RECEIPT_MAX_ENTRIES;
  const channels = new Map<string, ReceiptChannel>();
  for (const c of deps.config.channels) if (c.type === 'sms' && c.receipts !== undefined) channels.set(c.id, c as ReceiptChannel);
  /** Insertion order = send order: the oldest are evicted first. */
  const sent = new Map<string, Sent>();
  const receipts = new Map<string, number>();
  let duplicates = 0;
  const rejections: RejectionLog<ReceiptRejection> = createRejectionLog<ReceiptRejection>(logger, () => clock.now(), 10, 60_000, 'delivery receipt refused', clock);

  const key = (channelId: string, messageId: string): string => `${channelId}\u0000${messageId}`;

  function prune(): void {
    const horizon = clock.now() - retentionMs;
    for (const [k, s] of sent) {
      if (sent.size <= maxEntries && s.at >= horizon) break;
      sent.delete(k);
    }
  }

  function reject<T>(code: ReceiptRejection, channelId: string, reason: string): Outcome<T> {
    rejections.record(code, channelId, reason);
    return fail(code);
  }

  function one(c: ReceiptChannel, item: unknown): ReceiptItemResult {
    const idValue = jsonPointer(item, c.receipts.idPointer);
    const messageId = typeof idValue === 'string' || typeof idValue === 'number' ? String(idValue) : undefined;
    const word = jsonPointer(item, c.receipts.statusPointer);
    const status = typeof word === 'string' || typeof word === 'number' || typeof word === 'boolean' ? c.receipts.statuses[String(word)] : undefined;
    if (messageId === undefined || status === undefined) {
      rejections.record('NOTIFY_RECEIPT_BAD_BODY', c.id, messageId === undefined ? `no message id at ${c.receipts.idPointer}` : `unknown status ${JSON.stringify(word)?.slice(0, 50) ?? 'missing'}`);
      return { ...(messageId !== undefined ? { messageId } : {}), outcome: 'NOTIFY_RECEIPT_BAD_BODY' };
    }
    const s = sent.get(key(c.id, messageId));
    // Ids older than the retention were pruned before the batch: unknown too.
    if (s === undefined) {
      rejections.record('NOTIFY_RECEIPT_UNKNOWN_MESSAGE', c.id, `message id ${messageId.slice(0, 100)}`);
      return { messageId, outcome: 'NOTIFY_RECEIPT_UNKNOWN_MESSAGE' };
    }
    if (s.seen.has(status)) {
      duplicates++;
      return { messageId, outcome: 'duplicate' };
    }
    s.seen.add(status);
    const rk = `${c.id}\u0000${status}`;
    receipts.set(rk, (receipts.get(rk) ?? 0) + 1);
    const facts: ReceiptAuditFacts = { channel: c.id, recipient: s.recipient, status, escalationLevel: s.level, reason: `gateway ${String(word).slice(0, 60)}, message ${messageId.slice(0, 100)}` };
    let kept = false;
    try {
      kept = deps.audit(s.incidentId, facts);
    } catch (err) {
      logger.error({ err, incidentId: s.incidentId, code: 'ALERTS_NOTIFY_AUDIT_FAILED' }, 'could not record a delivery receipt');
    }
    try {
      deps.onReceipt?.(s.incidentId, facts);
    } catch (err) {
      logger.error({ err, incidentId: s.incidentId, code: 'ALERTS_NOTIFY_FAILED' }, 'the receipt hook failed');
    }
    // A failed SMS or an unanswered call is a person not reached: loud, whatever the audit did.
    const log = status === 'failed' || status === 'not_answered' ? logger.warn.bind(logger) : logger.info.bind(logger);
    log({ incidentId: s.incidentId, channel: c.id, recipient: s.recipient, status, messageId, audited: kept }, 'delivery receipt');
    return { messageId, outcome: 'recorded' };
  }

  return {
    remember(channelId, msg, messageId) {
      if (!channels.has(channelId)) return;
      const k = key(channelId, messageId);
      sent.delete(k);
      sent.set(k, { incidentId: msg.incidentId, recipient: msg.recipients.length === 1 ? (msg.recipients[0]?.personId ?? 'group') : 'group', level: msg.level, at: clock.now(), seen: new Set() });
      prune();
    },
    handle(channelId, signature, rawBody) {
      const c = channels.get(channelId);
      if (c === undefined) return reject('NOTIFY_RECEIPT_UNKNOWN_CHANNEL', channelId.slice(0, 64), 'no channel with receipts');
      if (signature === undefined || !verifyWebhookSignature(c.receipts.secret, signature, rawBody, Math.floor(clock.now() / 1000))) {
        return reject('NOTIFY_RECEIPT_BAD_SIGNATURE', channelId, signature === undefined ? 'no signature header' : 'signature does not match or is too old');
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(rawBody);
      } catch {
        return reject('NOTIFY_RECEIPT_BAD_BODY', channelId, 'not JSON');
      }
      const batch = Array.isArray(parsed);
      const items: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
      if (items.length === 0 || items.length > RECEIPT_MAX_BATCH) return reject('NOTIFY_RECEIPT_BAD_BODY', channelId, `${items.length} receipts in one request (1 to ${RECEIPT_MAX_BATCH})`);
      prune();
      const results = items.map((item) => one(c, item));
      // A single receipt answers with its own code; a batch answers 200 with each one's outcome, so
      // that a gateway retrying a refused batch does not hold back the receipts that were good.
      const first = results[0];
      if (!batch && first !== undefined && first.outcome !== 'recorded' && first.outcome !== 'duplicate') return fail(first.outcome);
      return { ok: true, value: results };
    },
    stats: () => ({ receipts: new Map(receipts), rejected: rejections.counts(), duplicates }),
    close: () => rejections.close(),
  };
}

const Params = Type.Object({ channelId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
type Params = Static<typeof Params>;
const Reply = Type.Object({
  results: Type.Array(Type.Object({ messageId: Type.Optional(Type.String()), outcome: Type.String() })),
});

export interface ReceiptRoutesOptions {
  readonly book: ReceiptBook;
}

/** POST /api/notify/receipts/:channelId (raw JSON body: the signature covers its exact bytes). */
export async function receiptRoutes(app: FastifyInstance, opts: ReceiptRoutesOptions): Promise<void> {
  // Encapsulated: only this plugin's route sees the body as the string the gateway signed.
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 256 * 1024 }, (_req, body, done) => done(null, body));
  app.post<{ Params: Params; Body: string }>(
    '/api/notify/receipts/:channelId',
    {
      schema: {
        summary: "An SMS / voice gateway's delivery receipt (signed with the channel's shared secret, no user token); recorded in the incident's audit once",
        params: Params,
        response: { 200: Reply, 400: ApiError, 401: ApiError, 404: ApiError },
      },
    },
    async (req) => {
      const header = req.headers[SIGNATURE_HEADER];
      const r = opts.book.handle(req.params.channelId, typeof header === 'string' ? header : undefined, typeof req.body === 'string' ? req.body : '');
      if (!r.ok) throw new AlertsError(r.code, r.message);
      return { results: r.value };
    },
  );
}
