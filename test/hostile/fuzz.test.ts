import { describe, expect, it } from 'vitest';
import { REJECT_CODES } from '../../contract/device-message.ts';
import { testInflux } from '../support/influx-db.ts';
import { formatFuzz, runFuzz } from './fuzz-run.ts';

/**
 * Issue 12 "Hostile input": a fuzz run over the real broker and ingest (child processes), short
 * enough for npm test; `npm run fuzz -- <count> <seed>` runs a longer one (test/hostile/fuzz-main.ts).
 * A device sends mutated and random payloads and the fixed hostile cases (fuzz-run.ts); afterwards
 * both processes are up, another device's valid reading is stored, everything the broker
 * acknowledged reached ingest, and every rejection is counted by reason (printed at the end).
 */
const SEED = Number(process.env.CAREWATCH_FUZZ_SEED ?? 20261205);

describe('fuzz: hostile device payloads through the real broker and ingest', () => {
  it('both stay up, valid input still gets stored, every rejection is counted by reason', async () => {
    const { url, database } = testInflux('fuzz');
    const r = await runFuzz({ influxUrl: url, database, count: 250, seed: SEED });
    console.log(formatFuzz(r, SEED));
    expect(r.brokerAlive).toBe(true);
    expect(r.ingestAlive).toBe(true);
    expect(r.validStored).toBe(true);
    // Every publish got an answer: acknowledged, or refused by closing the connection. None hung.
    expect(r.outcomes.timeout).toBe(0);
    expect(r.outcomes.acked + r.outcomes.closed).toBe(r.sent);
    // The broker refused what is not this device's to send (wildcards, other devices, oversized),
    // and counted each refusal by its code.
    const brokerRefusals = Object.values(r.brokerRejected).reduce((a, b) => a + b, 0);
    expect(brokerRefusals).toBe(r.outcomes.closed);
    expect(r.brokerRejected.BROKER_WILDCARD_IN_PUBLISH ?? 0).toBeGreaterThan(0);
    for (const how of ['fixed:1MB', 'fixed:wildcard+', 'fixed:wildcard#', 'fixed:other-device', 'fixed:other-home', 'fixed:alerts-topic', 'fixed:command-topic']) expect(r.byHow[how], how).toEqual({ closed: 1 });
    // Ingest got every acknowledged message (and the offline statuses the broker published for the
    // device at each closed connection) and counted every refusal under a code of the catalogue.
    expect(r.ingestReceived).toBeGreaterThanOrEqual(r.outcomes.acked + 1);
    const codes = new Set<string>([...REJECT_CODES, 'INFLUX_REJECTED']);
    for (const code of Object.keys(r.ingestRejected)) expect(codes.has(code), code).toBe(true);
    for (const code of ['MALFORMED_JSON', 'SCHEMA', 'CLOCK_SKEW']) expect(r.ingestRejected[code] ?? 0, code).toBeGreaterThan(0);
  }, 180_000);
});
