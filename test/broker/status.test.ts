import { describe, expect, it } from 'vitest';
import { offlineStatus, stampReceived, stampWill } from '../../broker/status.ts';
import { BROKER_STAMP_MAX_BYTES } from '../../contract/payloads.ts';

const NOW = 1_767_225_600_123;
const stamp = (text: string): string => stampReceived(Buffer.from(text), NOW).toString();

describe('stampReceived', () => {
  it('appends the broker receive time as the last key of a JSON object', () => {
    expect(JSON.parse(stamp('{"ts":1,"seq":2,"metrics":{"temperature_c":21}}'))).toEqual({ ts: 1, seq: 2, metrics: { temperature_c: 21 }, brokerTs: NOW });
    expect(stamp('{"ts":1}\n')).toBe(`{"ts":1,"brokerTs":${NOW}}`);
    expect(JSON.parse(stamp(' { } '))).toEqual({ brokerTs: NOW });
  });

  it('wins over a brokerTs the device put in itself', () => {
    expect((JSON.parse(stamp('{"brokerTs":5,"ts":1}')) as { brokerTs: number }).brokerTs).toBe(NOW);
  });

  it('forwards anything that is not a JSON object unchanged, for ingest and alerts to reject', () => {
    for (const raw of ['not json', '[1,2]', '{"ts":', '', '}']) expect(stamp(raw)).toBe(raw);
  });

  it('adds no more than the contract allows for the stamp', () => {
    expect(stamp('{"a":1}').length - '{"a":1}'.length).toBeLessThanOrEqual(BROKER_STAMP_MAX_BYTES);
  });
});

describe('statuses the broker writes', () => {
  it('stamps offline statuses and wills with the broker time', () => {
    expect(JSON.parse(offlineStatus(NOW, 'connection_lost').toString())).toEqual({ ts: NOW, brokerTs: NOW, online: false, reason: 'connection_lost' });
    expect(JSON.parse(stampWill(Buffer.from('{"online":false}'), NOW).toString())).toEqual({ ts: NOW, brokerTs: NOW, online: false, reason: 'connection_lost' });
    // A will can never claim the device is up; its reason and firmware are kept; garbage is replaced.
    expect(JSON.parse(stampWill(Buffer.from('{"online":true,"firmware":"1.2","reason":"power"}'), 5).toString())).toEqual({ ts: 5, brokerTs: 5, online: false, reason: 'power', firmware: '1.2' });
    expect(JSON.parse(stampWill(Buffer.from('not json'), 7).toString())).toEqual({ ts: 7, brokerTs: 7, online: false, reason: 'connection_lost' });
  });
});
