import { CliUsageError, parseCliArgs, type CliRequest } from './cli-args.ts';

/**
 * Command-line control of a running simulator (its own tiny process; composition root of the CLI):
 *   node --import tsx device-sim/cli.ts fire h01 r101
 * Exit codes: 0 done, 1 the simulator refused or could not be reached, 2 bad arguments.
 */

function baseUrl(req: CliRequest, env: NodeJS.ProcessEnv): string {
  if (req.url !== undefined) return req.url;
  if (env.CAREWATCH_SIM_CONTROL_URL) return env.CAREWATCH_SIM_CONTROL_URL.replace(/\/$/, '');
  return `http://127.0.0.1:${env.CAREWATCH_SIM_CONTROL_PORT || '8090'}`;
}

/** `list`: one line per device instead of a wall of JSON. */
function formatDevices(text: string): string {
  const rows = JSON.parse(text) as Array<{ id: string; kind: string; connected: boolean; networkUp: boolean; seq: number }>;
  return rows.map((r) => `${r.id.padEnd(24)} ${r.kind.padEnd(24)} ${r.connected ? 'online ' : r.networkUp ? 'connecting' : 'offline'} seq=${r.seq}`).join('\n');
}

async function main(): Promise<number> {
  let req: CliRequest;
  try {
    req = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const url = `${baseUrl(req, process.env)}${req.path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method,
      ...(req.body !== undefined ? { body: JSON.stringify(req.body), headers: { 'content-type': 'application/json' } } : {}),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    process.stderr.write(`cannot reach the simulator control API at ${url}: ${(err as Error).message}\n(is the simulator running? set --url or CAREWATCH_SIM_CONTROL_URL)\n`);
    return 1;
  }
  const text = await res.text();
  if (!res.ok) {
    process.stderr.write(`simulator refused (${res.status}): ${text}\n`);
    return 1;
  }
  process.stdout.write(`${req.path === '/devices' ? formatDevices(text) : text}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
