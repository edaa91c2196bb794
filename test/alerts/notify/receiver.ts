import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP receiver on 127.0.0.1:0 for the channel tests: records every request and answers
 * from a script (status and body per request; `hang` never answers, for timeouts; `endless` answers
 * 200 and sends JSON-looking bytes without end, as a broken or hostile gateway could).
 */
export interface ReceivedRequest {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export type Reply = { readonly status: number; readonly body?: string } | 'hang' | 'endless';

export interface Receiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Decides each reply (default 200 `{"errcode":0,"errmsg":"ok"}`). */
  reply: (req: ReceivedRequest, index: number) => Reply;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const hanging: ServerResponse[] = [];
  const receiver: Receiver = {
    url: '',
    requests: [],
    reply: () => ({ status: 200, body: '{"errcode":0,"errmsg":"ok"}' }),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: ReceivedRequest = { url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      const index = receiver.requests.length;
      receiver.requests.push(rec);
      const r = receiver.reply(rec, index);
      if (r === 'hang') {
        hanging.push(res);
        return;
      }
      if (r === 'endless') {
        hanging.push(res);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"errcode":0,"errmsg":"');
        const chunk = 'x'.repeat(16 * 1024);
        const more = (): void => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', more);
        };
        more();
        return;
      }
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (receiver as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}
