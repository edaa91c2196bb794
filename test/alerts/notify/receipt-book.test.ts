import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../common/clock.ts';
import { webhookSignature } from '../../../alerts/notify/adapters.ts';
import type { Notification } from '../../../alerts/notify/channel.ts';
import { parseNotifyConfig } from '../../../alerts/notify/config.ts';
import { createReceiptBook, RECEIPT_RETENTION_MS, type ReceiptAuditFacts } from '../../../alerts/notify/receipt-routes.ts';

/**
 * The receipt book alone (issue 15, audit gap 6): how long message ids are kept, the bound on their
 * number, and that a flood of refused receipts is counted exactly but logged rate-limited.
 */

const SECRET = 'sms-receipt-secret-0123456789';
const config = parseNotifyConfig({
  baseUrl: 'https://cw.example.cn',
  channels: [
    {
      id: 'sms',
      type: 'sms',
      url: 'https://gw.example.cn/send',
      bodyTemplate: '{}',
      messageIdPointer: '/BizId',
      receipts: { secret: SECRET, idPointer: '/biz_id', statusPointer: '/success', statuses: { true: 'delivered', false: 'failed' } },
    },
    { id: 'plain-sms', type: 'sms', url: 'https://gw.example.cn/send', bodyTemplate: '{}' },
  ],
  routes: [{ severities: ['critical'], level: 0, channels: ['sms'] }],
});

function setup(opts: { maxEntries?: number } = {}) {
  const clock = createManualClock(Date.UTC(2026, 0, 1));
  const lines: Array<{ level: number; code?: string; msg: string; suppressed?: number }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as (typeof lines)[number]);
      cb();
    },
  });
  const audits: Array<[string, ReceiptAuditFacts]> = [];
  const book = createReceiptBook({ config, clock, logger: pino({ level: 'info' }, sink), audit: (id, f) => (audits.push([id, f]), true), ...opts });
  const msg = (incidentId: string): Notification => ({ id: `${incidentId}:0:sms:li`, incidentId, homeId: 'h01', severity: 'critical', level: 0, title: '', text: '', short: '', link: '', recipients: [{ personId: 'li', name: '李护士' }] });
  const receipt = (id: string, success = true) => {
    const body = JSON.stringify({ biz_id: id, success });
    return book.handle('sms', webhookSignature(SECRET, Math.floor(clock.now() / 1000), body), body);
  };
  return { clock, lines, audits, book, msg, receipt };
}

describe('receipt book', () => {
  it('keeps a message id for 72 h, then refuses its receipt as unknown', () => {
    const { clock, book, msg, receipt, audits } = setup();
    book.remember('sms', msg('inc-1'), 'b1');
    book.remember('sms', msg('inc-2'), 'b2');
    clock.advance(RECEIPT_RETENTION_MS);
    expect(receipt('b1')).toMatchObject({ ok: true, value: [{ messageId: 'b1', outcome: 'recorded' }] });
    clock.advance(1);
    expect(receipt('b2')).toMatchObject({ ok: false, code: 'NOTIFY_RECEIPT_UNKNOWN_MESSAGE' });
    expect(audits.map(([id, f]) => [id, f.status, f.recipient])).toEqual([['inc-1', 'delivered', 'li']]);
  });

  it('holds at most maxEntries ids, the oldest going first; ignores channels without receipts', () => {
    const { book, msg, receipt } = setup({ maxEntries: 3 });
    for (const id of ['b1', 'b2', 'b3', 'b4']) book.remember('sms', msg(`inc-${id}`), id);
    book.remember('plain-sms', msg('inc-x'), 'bx');
    expect(receipt('b1')).toMatchObject({ ok: false, code: 'NOTIFY_RECEIPT_UNKNOWN_MESSAGE' });
    for (const id of ['b2', 'b3', 'b4']) expect(receipt(id)).toMatchObject({ ok: true });
    expect(book.handle('plain-sms', undefined, '{}')).toMatchObject({ ok: false, code: 'NOTIFY_RECEIPT_UNKNOWN_CHANNEL' });
  });

  it('a flood of bad signatures is counted exactly and logged at most 10 times a minute per code', () => {
    const { clock, book, lines } = setup();
    for (let i = 0; i < 500; i++) expect(book.handle('sms', `t=${Math.floor(clock.now() / 1000)},v1=${'0'.repeat(64)}`, '{}')).toMatchObject({ ok: false, code: 'NOTIFY_RECEIPT_BAD_SIGNATURE' });
    expect(book.stats().rejected).toEqual({ NOTIFY_RECEIPT_BAD_SIGNATURE: 500 });
    const refused = lines.filter((l) => l.code === 'NOTIFY_RECEIPT_BAD_SIGNATURE');
    expect(refused.filter((l) => l.msg === 'delivery receipt refused')).toHaveLength(10);
    // The window's summary names how many lines it held back.
    clock.advance(60_000);
    expect(lines.filter((l) => l.code === 'NOTIFY_RECEIPT_BAD_SIGNATURE' && l.suppressed === 490)).toHaveLength(1);
    book.close();
  });
});
