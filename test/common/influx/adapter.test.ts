import { createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openInfluxDatabase, type InfluxDatabase } from '../../../common/influx/database.ts';
import type { InfluxErrorCode } from '../../../common/influx/errors.ts';
import { toLine, type FieldValue } from '../../../common/influx/line-protocol.ts';
import { allRows, createInfluxReader, ident, rows, str } from '../../../common/influx/reader.ts';
import { createLineWriter } from '../../../common/influx/writer.ts';
import { RP_RAW } from '../../../common/influx-schema.ts';
import { freePort } from '../../../common/influxd.ts';
import { FIXTURE_RETENTION, caughtInfluxError, testInflux } from '../../support/influx-db.ts';

/**
 * The one InfluxDB adapter (common/influx/) against the run's real InfluxDB 1.6: what the encoder
 * writes is what the reader gets back, for every escape case; retention policy selection;
 * idempotent writes; and how each failure is classified (code, retryable). Ingest and alerts both
 * write and read through exactly these parts.
 */

const T0 = Date.UTC(2026, 0, 15, 4, 0, 0);
let db: InfluxDatabase;
let n = 0;
/** A distinct time per point (ns), so points never overwrite each other by accident. */
const nextNs = (): bigint => BigInt(T0) * 1_000_000n + BigInt(++n);

beforeAll(async () => {
  const { url, database } = testInflux('adapter');
  db = openInfluxDatabase({ url, database, enforce: true, retention: FIXTURE_RETENTION });
  await db.ensureDatabase();
});
afterAll(() => db.close());

const caught = caughtInfluxError;

/** Writes one point with a unique `case` tag and reads back its row (tags and fields as columns). */
async function roundTrip(tags: Record<string, string>, fields: Record<string, FieldValue>, measurement = 'escapes'): Promise<Record<string, unknown>> {
  const id = `c${++n}`;
  await db.writer.write([toLine({ measurement, tags: { ...tags, case: id }, fields, timeNs: nextNs() })]);
  const series = await db.reader.series(`SELECT * FROM ${ident(measurement)} WHERE "case" = ${str(id)}`);
  const all = allRows(series);
  expect(all).toHaveLength(1);
  return all[0] as Record<string, unknown>;
}

describe('encoder + writer + reader round trip', () => {
  it('keeps commas, spaces, equals signs, quotes and unicode in tags, field keys and string fields', async () => {
    const nasty = 'a,b c=d "q" 火災 😀 é';
    const fieldValue = `${nasty} \\ back\\slash \\"q\\" trailing\\`;
    const row = await roundTrip({ [nasty]: nasty, plain: 'x' }, { [`field ${nasty}`]: fieldValue, newline: 'line 1\nline 2\r\nend', n: 1 }, 'meas with, space');
    expect(row).toMatchObject({ [nasty]: nasty, plain: 'x', [`field ${nasty}`]: fieldValue, newline: 'line 1\nline 2\r\nend', n: 1 });
  });

  it('refuses a tag with a backslash or newline: 1.6 would store it altered (shown here with a raw line)', async () => {
    // Why the encoder refuses instead of escaping: an escaped backslash comes back doubled…
    await db.writer.write(`raw_escape,case=bs v=1 ${nextNs()}`.replace('case=bs', 'case=bs,t=a\\\\b'));
    const [s] = await db.reader.series(`SELECT * FROM "raw_escape" WHERE "case" = 'bs'`);
    expect(s === undefined ? undefined : rows(s)[0]?.t).toBe('a\\\\b');
    // …and so the encoder says so before anything is written.
    for (const bad of ['a\\b', 'trailing\\', 'two\nlines', 'cr\r']) {
      const err = await caught(roundTrip({ t: bad }, { v: 1 }));
      expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'INFLUX_UNENCODABLE', retryable: false });
    }
  });

  it('keeps integers and floats apart (i suffix), and refuses a type conflict as not retryable', async () => {
    await roundTrip({}, { count: { int: 7 }, ratio: 7, big: 9_007_199_254_740_991n, flag: false }, 'types');
    const [keys = []] = await db.reader.query('SHOW FIELD KEYS FROM "types"');
    const types = Object.fromEntries(allRows(keys).map((r) => [r.fieldKey, r.fieldType]));
    expect(types).toMatchObject({ count: 'integer', ratio: 'float', big: 'integer', flag: 'boolean' });
    const err = await caught(db.writer.write(toLine({ measurement: 'types', tags: {}, fields: { count: 1.5 }, timeNs: nextNs() })));
    expect({ code: err.code, status: err.status, retryable: err.retryable }).toEqual({ code: 'INFLUX_REJECTED', status: 400, retryable: false });
  });

  it('property: any tag value, field key and string field the encoder accepts comes back unchanged', async () => {
    const special = fc.constantFrom(',', ' ', '=', '"', "'", '\\', '\n', '\r', '\t', 'é', '火', '😀', 'a', 'Z', '0', '-', '_');
    const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 12 }), fc.string({ unit: special, maxLength: 12 }));
    await fc.assert(
      fc.asyncProperty(text, text, text, async (tagValue, fieldKey, fieldValue) => {
        const key = `f_${fieldKey}`;
        const unencodable = /[\\\n\r]/.test(tagValue) || /[\\\n\r]/.test(key);
        if (unencodable) {
          expect((await caught(roundTrip({ t: tagValue }, { [key]: fieldValue }, 'prop'))).code).toBe('INFLUX_UNENCODABLE');
          return;
        }
        const row = await roundTrip({ t: tagValue }, { [key]: fieldValue }, 'prop');
        // An empty tag is left out (InfluxDB refuses empty tag values): no column, or null.
        expect(row.t ?? null).toBe(tagValue === '' ? null : tagValue);
        expect(row[key]).toBe(fieldValue);
      }),
      { numRuns: 150 },
    );
  });
});

describe('writer', () => {
  it('writes to the retention policy it is given, the default one (records) otherwise', async () => {
    const ns = nextNs();
    await db.writer.write(`rp_check,where=raw v=1 ${ns}`, { rp: RP_RAW });
    await db.writer.write(`rp_check,where=records v=2 ${ns}`);
    const raw = allRows(await db.reader.series(`SELECT * FROM ${ident(RP_RAW)}."rp_check"`));
    const records = allRows(await db.reader.series('SELECT * FROM "rp_check"'));
    expect(raw.map((r) => r.where)).toEqual(['raw']);
    expect(records.map((r) => r.where)).toEqual(['records']);
  });

  it('is idempotent: the same series and timestamp twice is one point, the last write wins', async () => {
    const line = (v: number): string => toLine({ measurement: 'idem', tags: { home: 'h01', device: 'd1' }, fields: { v }, timeNs: 1_767_225_600_000_000_001n });
    await db.writer.write([line(1), line(1)]);
    await db.writer.write(line(2));
    const [s] = await db.reader.series('SELECT count("v"), last("v") FROM "idem"');
    expect(s === undefined ? [] : rows(s).map((r) => [r.count, r.last])).toEqual([[1, 2]]);
  });

  it('a bad line is INFLUX_REJECTED (400, not retryable) and the good lines of the body are stored', async () => {
    const ns = nextNs();
    const err = await caught(db.writer.write([`partial,ok=yes v=1 ${ns}`, 'partial,ok=no v=', `partial,ok=also v=3 ${ns}`]));
    expect({ code: err.code, status: err.status, retryable: err.retryable }).toEqual({ code: 'INFLUX_REJECTED', status: 400, retryable: false });
    expect(err.message).toMatch(/unable to parse/);
    expect(allRows(await db.reader.series('SELECT * FROM "partial"')).map((r) => r.ok).sort()).toEqual(['also', 'yes']);
  });

  it('a point older than its retention policy is INFLUX_BEYOND_RETENTION, not retryable', async () => {
    const { url, database } = testInflux('adapter_rp');
    const short = openInfluxDatabase({ url, database, enforce: true });
    try {
      await short.ensureDatabase(); // production periods: raw keeps 30 days
      const err = await caught(short.writer.write(`telemetry,device=d v=1 ${BigInt(Date.UTC(2001, 0, 1)) * 1_000_000n}`, { rp: RP_RAW }));
      expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'INFLUX_BEYOND_RETENTION', retryable: false });
    } finally {
      short.close();
    }
  });

  it('a missing database is INFLUX_DATABASE_NOT_FOUND, retryable (create it, then write again)', async () => {
    const { url, database } = testInflux('adapter_missing');
    const missing = openInfluxDatabase({ url, database });
    try {
      const err = await caught(missing.writer.write(`m v=1 ${nextNs()}`));
      expect({ code: err.code, status: err.status, retryable: err.retryable }).toEqual({ code: 'INFLUX_DATABASE_NOT_FOUND', status: 404, retryable: true });
      // The reader treats a database nobody wrote yet as empty.
      expect(await missing.reader.query('SELECT * FROM "m"')).toEqual([[]]);
      await missing.ensureDatabase();
      await missing.writer.write(`m v=1 ${nextNs()}`);
      expect(allRows(await missing.reader.series('SELECT * FROM "m"'))).toHaveLength(1);
    } finally {
      missing.close();
    }
  });

  it('an unreachable server is INFLUX_UNREACHABLE, retryable, for the writer and the reader', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const w = createLineWriter({ url, database: 'x' });
    try {
      const err = await caught(w.write('m v=1 1'));
      expect({ code: err.code, status: err.status, retryable: err.retryable }).toEqual({ code: 'INFLUX_UNREACHABLE', status: undefined, retryable: true });
    } finally {
      w.close();
    }
    const r = await caught(createInfluxReader({ url, database: 'x' }).query('SELECT * FROM m'));
    expect({ code: r.code, retryable: r.retryable }).toEqual({ code: 'INFLUX_UNREACHABLE', retryable: true });
  });

  it('a server that accepts and never answers is INFLUX_TIMEOUT, retryable', async () => {
    // A stall a real InfluxDB cannot be made to produce on demand: a socket that reads and never answers.
    const sockets: Socket[] = [];
    const server: Server = createServer((s) => {
      sockets.push(s);
      s.resume();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
    const w = createLineWriter({ url, database: 'x', timeoutMs: 200 });
    try {
      const codes: InfluxErrorCode[] = [(await caught(w.write('m v=1 1'))).code, (await caught(createInfluxReader({ url, database: 'x', timeoutMs: 200 }).query('SELECT 1'))).code];
      expect(codes).toEqual(['INFLUX_TIMEOUT', 'INFLUX_TIMEOUT']);
    } finally {
      w.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('reader', () => {
  it('returns each statement in order, with the epoch asked for, from another database when asked', async () => {
    const ns = BigInt(T0) * 1_000_000n + 5_000_000_000n; // T0 + 5 s
    await db.writer.write(`epoch,k=v v=1 ${ns}`);
    const [ms = [], none = []] = await db.reader.query('SELECT * FROM "epoch"; SELECT * FROM "no_such_measurement"');
    expect(allRows(ms).map((r) => r.time)).toEqual([T0 + 5_000]);
    expect(none).toEqual([]);
    const s = allRows(await db.reader.series('SELECT * FROM "epoch"', { epoch: 's' }));
    expect(s.map((r) => r.time)).toEqual([T0 / 1000 + 5]);
    const other = createInfluxReader({ url: db.url, database: 'nothing_here' });
    expect(allRows(await other.series('SELECT * FROM "epoch"', { database: db.database })).map((r) => r.k)).toEqual(['v']);
  });

  it('takes credentials in the URL (sent as Basic auth: fetch itself refuses such a URL)', async () => {
    const u = new URL(db.url);
    u.username = 'carewatch';
    u.password = 'p@ss word';
    const withAuth = openInfluxDatabase({ url: u.href, database: db.database });
    try {
      await withAuth.writer.write(`auth_url v=1 ${nextNs()}`);
      expect(allRows(await withAuth.reader.series('SELECT * FROM "auth_url"'))).toHaveLength(1);
    } finally {
      withAuth.close();
    }
  });

  it('a change (POST) to a database that does not exist is INFLUX_QUERY, where a read of it is empty', async () => {
    const none = createInfluxReader({ url: db.url, database: 'no_such_db_here' });
    expect(await none.query('SHOW RETENTION POLICIES ON "no_such_db_here"')).toEqual([[]]);
    const err = await caught(none.query('CREATE RETENTION POLICY "x" ON "no_such_db_here" DURATION 1d REPLICATION 1', { method: 'POST' }));
    expect({ code: err.code, message: err.message }).toMatchObject({ code: 'INFLUX_QUERY', message: expect.stringContaining('database not found') });
  });

  it('a statement InfluxDB refuses is INFLUX_QUERY, not retryable', async () => {
    for (const q of ['SELEC nonsense', 'SELECT nosuchfunc(v) FROM "epoch"']) {
      const err = await caught(db.reader.query(q));
      expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'INFLUX_QUERY', retryable: false });
    }
  });
});
