import { expect, it } from 'vitest';
import AsyncMemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import { IndexedMemoryPersistence } from '../../broker/memory-persistence.ts';

/**
 * The indexed outgoing queue must give exactly the stock aedes-persistence results (issue 6 made it
 * O(1)): the same random sequence of enqueue / update / clear, including the odd cases (a message
 * queued twice for a session, clears and updates of unknown or unnumbered ids, reused packet ids, another
 * broker's packets), is applied to both and every answer and the queues compared.
 */
interface P {
  cmd: string;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  dup: boolean;
  brokerId: string;
  brokerCounter: number;
  messageId?: number;
}

async function drain(stream: NodeJS.ReadableStream): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const p of stream) out.push(p);
  return out;
}

it('answers every enqueue, update, clear and stream exactly as the stock in-memory persistence', async () => {
  const stock = new AsyncMemoryPersistence();
  const ours = new IndexedMemoryPersistence();
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const clients = ['svc-ingest', 'svc-alerts', 'dev-1'];
  const sent: P[] = [];
  let counter = 0;
  for (let step = 0; step < 4_000; step++) {
    const client = { id: clients[rnd(clients.length)] as string };
    const op = rnd(10);
    if (op < 4) {
      const p: P = { cmd: 'publish', topic: `t/${step}`, payload: Buffer.from(String(step)), qos: 1, retain: false, dup: false, brokerId: rnd(20) === 0 ? 'other' : 'b1', brokerCounter: ++counter };
      // Sometimes one message for the same session twice (overlapping subscriptions).
      const subs = rnd(8) === 0 ? [{ clientId: client.id }, { clientId: client.id }] : [{ clientId: client.id }];
      await stock.outgoingEnqueueCombi(subs, p);
      await ours.outgoingEnqueueCombi(subs, p);
      sent.push(p);
    } else if (op < 7 && sent.length > 0) {
      // Number a queued message (a delivery), with small ids so they get reused.
      // Now and then unnumbered, which puts an older entry back among the unnumbered ones.
      const p = { ...(sent[rnd(sent.length)] as P), messageId: rnd(12) === 0 ? undefined : 1 + rnd(30) };
      if (rnd(15) === 0) p.brokerCounter = 1_000_000 + step; // unknown counter: falls to the messageId case
      const a = await stock.outgoingUpdate(client, { ...p }).then(() => 'ok', (e: Error) => e.message);
      const b = await ours.outgoingUpdate(client, { ...p }).then(() => 'ok', (e: Error) => e.message);
      expect(b, `update step ${step}`).toBe(a);
    } else {
      const id = rnd(12) === 0 ? undefined : 1 + rnd(30);
      const a = await stock.outgoingClearMessageId(client, { messageId: id });
      const b = await ours.outgoingClearMessageId(client, { messageId: id });
      expect(JSON.stringify(b), `clear ${String(id)} step ${step}`).toEqual(JSON.stringify(a));
    }
    if (step % 500 === 0 || step === 3_999) {
      for (const c of clients) expect(await drain(ours.outgoingStream({ id: c })), `queue of ${c} at step ${step}`).toEqual(await drain(stock.outgoingStream({ id: c })));
    }
  }
  expect(sent.length).toBeGreaterThan(1000);
});
