import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createInfluxReader, parseQueryAnswer } from '../../../common/influx/reader.ts';
import { createLineWriter } from '../../../common/influx/writer.ts';
import { ensureInfluxSchema } from '../../../common/influx-schema.ts';
import { caughtInfluxError } from '../../support/influx-db.ts';

/**
 * InfluxDB's answers as a real InfluxDB cannot be made to give them on demand: cut off mid-body (the
 * server killed while answering), trickled a byte at a time, without end, or not InfluxDB's JSON.
 * A small node:http server gives each; every case must end as an InfluxError, never hang. Found in
 * session 21: node-influx (then the schema's client) never settled on a cut answer, so ingest's start
 * waited for ever with /health green and SIGTERM unanswered; the writer's idle timeout let a trickled
 * answer hold ingest's writes for ever.
 */
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function peer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const caught = caughtInfluxError;

/** Answers 200 with a promised length, sends the start of the body, then drops the connection. */
const cutMidBody = (req: IncomingMessage, res: ServerResponse): void => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
  res.write('{"results":[');
  setTimeout(() => res.socket?.destroy(), 50);
};

/** Answers with one byte every 50 ms, for ever (each byte resets an idle timeout). */
const trickle = (req: IncomingMessage, res: ServerResponse): void => {
  req.resume();
  res.writeHead(500, { 'content-type': 'application/json' });
  const t = setInterval(() => res.write(' '), 50);
  res.on('close', () => clearInterval(t));
};

describe('answers cut off, trickled or endless', () => {
  it('the schema (databases, policies, the continuous query) fails on an answer cut mid-body instead of waiting for ever', async () => {
    const url = await peer(cutMidBody);
    const err = await caught(ensureInfluxSchema({ url, database: 'x', enforce: true, timeoutMs: 2_000 }));
    expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'INFLUX_UNREACHABLE', retryable: true });
  });

  it('the schema fails at its deadline on an answer that never ends', async () => {
    const url = await peer(trickle);
    const err = await caught(ensureInfluxSchema({ url, database: 'x', enforce: true, timeoutMs: 300 }));
    expect(err.code).toBe('INFLUX_TIMEOUT');
  });

  it("the writer's deadline covers the answer: a trickled one is INFLUX_TIMEOUT", async () => {
    const url = await peer(trickle);
    const w = createLineWriter({ url, database: 'x', timeoutMs: 300 });
    try {
      const err = await caught(w.write('m v=1 1'));
      expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'INFLUX_TIMEOUT', retryable: true });
    } finally {
      w.close();
    }
  });

  it('the writer: an answer cut mid-body is INFLUX_UNREACHABLE', async () => {
    const url = await peer(cutMidBody);
    const w = createLineWriter({ url, database: 'x', timeoutMs: 5_000 });
    try {
      expect((await caught(w.write('m v=1 1'))).code).toBe('INFLUX_UNREACHABLE');
    } finally {
      w.close();
    }
  });

  it('the reader stops reading past its byte bound: INFLUX_ANSWER_TOO_LARGE, not retryable', async () => {
    const url = await peer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      const t = setInterval(() => res.write(`${' '.repeat(4096)}`), 1);
      res.on('close', () => clearInterval(t));
    });
    const err = await caught(createInfluxReader({ url, database: 'x', timeoutMs: 5_000, maxAnswerBytes: 64 * 1024 }).query('SELECT 1'));
    expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'INFLUX_ANSWER_TOO_LARGE', retryable: false });
  });
});

describe("answers that are not InfluxDB's JSON", () => {
  it.each([
    ['null', 'null'],
    ['a null result', '{"results":[null]}'],
    ['results not a list', '{"results":{}}'],
    ['a series without columns', '{"results":[{"series":[{"name":"m","values":[[1]]}]}]}'],
    ['a row that is not a list', '{"results":[{"series":[{"name":"m","columns":["time"],"values":[1]}]}]}'],
    ['tags that are not text', '{"results":[{"series":[{"name":"m","columns":["time"],"values":[[1]],"tags":{"a":1}}]}]}'],
  ])('%s is INFLUX_SERVER (retryable), not a TypeError', async (_name, body) => {
    expect(parseQueryAnswer(body)).toBeUndefined();
    const url = await peer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
    const err = await caught(createInfluxReader({ url, database: 'x' }).query('SELECT 1'));
    expect({ code: err.code, retryable: err.retryable }).toEqual({ code: 'INFLUX_SERVER', retryable: true });
  });

  it("reads InfluxDB's own shapes: series without values, a statement's error, none at all", () => {
    expect(parseQueryAnswer('{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"]}]},{"statement_id":1,"error":"database not found: x"},{"statement_id":2}]}')).toEqual({
      results: [{ series: [{ name: 'm', columns: ['time', 'v'], values: [] }] }, { series: [], error: 'database not found: x' }, { series: [] }],
    });
    expect(parseQueryAnswer('{"error":"error parsing query"}')).toEqual({ results: [], error: 'error parsing query' });
  });
});
