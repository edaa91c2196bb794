import { appendFile, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.ts';
import { createSpool, encodeRecord, type Spool } from '../../ingest/spool.ts';

const logger = createLogger('test', 'silent');
let dir: string;
const opened: Spool[] = [];

async function openSpool(maxBytes = 1 << 20, segmentBytes = 1 << 20): Promise<Spool> {
  const s = createSpool({ dir, maxBytes, segmentBytes, logger });
  await s.open();
  opened.push(s);
  return s;
}

async function readAll(s: Spool, from = s.checkpoint()): Promise<{ topics: string[]; end: number }> {
  const topics: string[] = [];
  let pos = from;
  for (;;) {
    const b = await s.read(pos, 1000);
    if (b.records.length === 0 && b.end === pos) return { topics, end: pos };
    for (const r of b.records) topics.push(r.topic);
    pos = b.end;
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'carewatch-spool-'));
});
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

describe('spool', () => {
  it('makes appended records readable only after commit, with payload and receive time intact', async () => {
    const s = await openSpool();
    s.append('a/1', Buffer.from('{"x":1}'), 1234.5);
    s.append('a/2', Buffer.from([0, 1, 2, 255]), 99);
    expect((await s.read(s.checkpoint(), 10)).records).toHaveLength(0);
    await s.commit();
    const b = await s.read(s.checkpoint(), 10);
    expect(b.records.map((r) => [r.topic, [...r.payload], r.receivedMs])).toEqual([
      ['a/1', [...Buffer.from('{"x":1}')], 1234.5],
      ['a/2', [0, 1, 2, 255], 99],
    ]);
    expect(b.end).toBe(s.end());
  });

  it('group-commits everything appended during one commit in one more commit', async () => {
    const s = await openSpool();
    s.append('first', Buffer.from('1'), 1);
    const c1 = s.commit();
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 100; i++) {
      s.append(`t${i}`, Buffer.from('p'), i);
      void s.commit();
    }
    await c1;
    await s.commit();
    // 101 commit() calls, at most two writes + fdatasyncs: the first record's, and one for the 100
    // that arrived while it ran.
    expect(s.stats().commits).toBeLessThanOrEqual(2);
    expect((await readAll(s)).topics).toHaveLength(101);
  });

  it('replays everything after the checkpoint when reopened', async () => {
    const s = await openSpool();
    for (let i = 0; i < 10; i++) s.append(`t${i}`, Buffer.from('p'), i);
    await s.commit();
    const first = await s.read(s.checkpoint(), 4);
    await s.advance(first.end);
    await s.close();
    const again = await openSpool();
    expect((await readAll(again)).topics).toEqual(['t4', 't5', 't6', 't7', 't8', 't9']);
  });

  it('cuts a torn tail left by a crash and keeps the whole records before it', async () => {
    const s = await openSpool();
    s.append('whole', Buffer.from('ok'), 1);
    await s.commit();
    await s.close();
    const [seg] = (await readdir(dir)).filter((n) => n.endsWith('.wal'));
    const path = join(dir, seg as string);
    // Half of a second record, as if the machine died in the middle of the write.
    const torn = encodeRecord('torn', Buffer.from('x'.repeat(100)), 2);
    await appendFile(path, torn.subarray(0, 60));
    const again = await openSpool();
    expect(again.stats().truncatedTailBytes).toBe(60);
    expect((await readAll(again)).topics).toEqual(['whole']);
    again.append('after', Buffer.from('ok'), 3);
    await again.commit();
    expect((await readAll(again)).topics).toEqual(['whole', 'after']);
  });

  it('cuts a tail whose checksum does not match (bytes written but garbage)', async () => {
    const s = await openSpool();
    s.append('whole', Buffer.from('ok'), 1);
    await s.commit();
    await s.close();
    const [seg] = (await readdir(dir)).filter((n) => n.endsWith('.wal'));
    const bad = encodeRecord('bad', Buffer.from('zz'), 2);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    await appendFile(join(dir, seg as string), bad);
    const again = await openSpool();
    expect((await readAll(again)).topics).toEqual(['whole']);
  });

  it('rolls segments and deletes the ones fully written to InfluxDB', async () => {
    const s = await openSpool(1 << 20, 200);
    for (let i = 0; i < 20; i++) {
      s.append(`t${i}`, Buffer.from('x'.repeat(50)), i);
      await s.commit();
    }
    const before = (await readdir(dir)).filter((n) => n.endsWith('.wal')).length;
    expect(before).toBeGreaterThan(3);
    const all = await readAll(s);
    expect(all.topics).toHaveLength(20);
    await s.advance(all.end);
    const after = (await readdir(dir)).filter((n) => n.endsWith('.wal')).length;
    expect(after).toBe(1);
    expect(s.stats().bytes).toBe(0);
    await s.close();
    // The checkpoint survives a restart: nothing to replay.
    const again = await openSpool(1 << 20, 200);
    expect((await readAll(again)).topics).toEqual([]);
  });

  it('reports full at its bound and has room again after the writer advances', async () => {
    const s = await openSpool(1000);
    while (!s.isFull()) s.append('t', Buffer.from('x'.repeat(90)), 1);
    await s.commit();
    expect(s.isFull()).toBe(true);
    const all = await readAll(s);
    await s.advance(all.end);
    expect(s.isFull()).toBe(false);
  });

  it('ignores a damaged checkpoint file and replays from the first segment', async () => {
    const s = await openSpool();
    s.append('a', Buffer.from('1'), 1);
    await s.commit();
    await s.advance(s.end());
    await s.close();
    await writeFile(join(dir, 'checkpoint.json'), '{not json');
    const again = await openSpool();
    expect((await readAll(again)).topics).toEqual(['a']);
  });

  it('skips a corrupt record in the middle of durable data instead of stopping', async () => {
    const s = await openSpool(1 << 20, 100);
    s.append('seg1-a', Buffer.from('x'.repeat(100)), 1);
    await s.commit();
    s.append('seg2-a', Buffer.from('y'), 2);
    await s.commit();
    await s.close();
    const segs = (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
    expect(segs).toHaveLength(2);
    // Flip a payload byte of the first (non-tail) segment: corruption, not a torn write.
    const p = join(dir, segs[0] as string);
    const { size } = await stat(p);
    const buf = Buffer.alloc(size);
    const h = await open(p, 'r+');
    await h.read(buf, 0, size, 0);
    buf.writeUInt8(buf.readUInt8(size - 1) ^ 0xff, size - 1);
    await h.write(buf, 0, size, 0);
    await h.close();
    const again = await openSpool(1 << 20, 100);
    expect((await readAll(again)).topics).toEqual(['seg2-a']);
    expect(again.stats().corruptSkipped).toBeGreaterThan(0);
  });
});
