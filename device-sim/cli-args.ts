/**
 * Pure parsing of the simulator CLI's arguments into one control-API request (device-sim/cli.ts
 * sends it). A mistake yields a CliUsageError whose message is the usage text plus what was wrong.
 */

export interface CliRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly body?: Record<string, unknown>;
  /** Explicit control API base URL (--url). */
  readonly url?: string;
}

export class CliUsageError extends Error {
  readonly code = 'SIM_USAGE';
}

type Shape = 'room' | 'device' | 'resident' | 'home' | 'any' | 'resident-or-room';
/** CLI command → scenario name and what the positional arguments are. */
const COMMANDS: Record<string, { scenario: string; args: Shape; options?: Record<string, unknown> }> = {
  fire: { scenario: 'fire', args: 'room' },
  smouldering: { scenario: 'fire', args: 'room', options: { kind: 'smouldering' } },
  'cooking-smoke': { scenario: 'cooking-smoke', args: 'room' },
  steam: { scenario: 'steam', args: 'room' },
  'call-point': { scenario: 'manual-call-point', args: 'room' },
  'manual-call-point': { scenario: 'manual-call-point', args: 'room' },
  'detector-fault': { scenario: 'detector-fault', args: 'device' },
  'dirty-detector': { scenario: 'dirty-detector', args: 'device' },
  stuck: { scenario: 'stuck', args: 'device' },
  hover: { scenario: 'hover', args: 'device' },
  'low-battery': { scenario: 'low-battery', args: 'device' },
  silent: { scenario: 'silent', args: 'device' },
  offline: { scenario: 'offline', args: 'device' },
  'home-offline': { scenario: 'home-offline', args: 'home' },
  'electrical-fault': { scenario: 'electrical-fault', args: 'any' },
  'gas-leak': { scenario: 'gas-leak', args: 'any' },
  'water-pressure-drop': { scenario: 'water-pressure-drop', args: 'any' },
  desaturation: { scenario: 'desaturation', args: 'resident' },
  'artefact-dip': { scenario: 'artefact-dip', args: 'resident' },
  bradycardia: { scenario: 'bradycardia', args: 'resident' },
  tachycardia: { scenario: 'tachycardia', args: 'resident' },
  fever: { scenario: 'fever', args: 'resident' },
  'bed-exit': { scenario: 'bed-exit', args: 'resident' },
  fall: { scenario: 'fall', args: 'resident' },
  wetness: { scenario: 'wetness', args: 'resident' },
  'missed-turn': { scenario: 'missed-turn', args: 'resident' },
  call: { scenario: 'call', args: 'resident-or-room' },
};

export const USAGE = `usage: node --import tsx device-sim/cli.ts <command> [args] [--opt key=value]... [--url http://127.0.0.1:8090]

  fire <home> <room> [flaming|smouldering]     smouldering <home> <room>
  cooking-smoke <home> <room>                  steam <home> <room>
  call-point <home> <room>
  offline <device>    online <device>          home-offline <home>    home-online <home>
  detector-fault <device>   dirty-detector <device>   stuck <device>   hover <device>
  low-battery <device>      silent <device>
  electrical-fault <device|home> [room]   gas-leak <device|home> [room]   water-pressure-drop <device|home> [room]
  desaturation <resident>   artefact-dip <resident>   bradycardia <resident>   tachycardia <resident>
  fever <resident>   bed-exit <resident> [--return-after <seconds>]   fall <resident>
  wetness <resident>   missed-turn <resident>
  call <resident> | call <home> <room>         press a call button (a resident's, or a room's pull cord)
  clear <scenario-id|target>   list   scenarios   catalogue

  e.g. fire h01 r101 | offline h01-sd-r101 | desaturation h01-p01 | bed-exit h01-p03 --return-after 120 | call h01-p01 | call h01 f1-bath
  The control URL defaults to CAREWATCH_SIM_CONTROL_URL, else http://127.0.0.1:$CAREWATCH_SIM_CONTROL_PORT (8090).`;

function usage(problem: string): CliUsageError {
  return new CliUsageError(`${problem}\n\n${USAGE}`);
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
function id(value: string | undefined, what: string): string {
  if (value === undefined) throw usage(`missing <${what}>`);
  if (!ID.test(value)) throw usage(`<${what}> "${value}" is not a valid id`);
  return value;
}

function parseValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  const n = Number(raw);
  return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
}

export function parseCliArgs(argv: readonly string[]): CliRequest {
  const positional: string[] = [];
  const options: Record<string, unknown> = {};
  let url: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw usage(`${a} needs a value`);
      return v;
    };
    if (a === '--url') {
      url = next();
      if (!/^https?:\/\/[^/]+\/?$/.test(url)) throw usage(`--url "${url}" must look like http://127.0.0.1:8090`);
    } else if (a === '--opt') {
      const kv = next();
      const eq = kv.indexOf('=');
      if (eq <= 0) throw usage(`--opt "${kv}" must be key=value`);
      options[kv.slice(0, eq)] = parseValue(kv.slice(eq + 1));
    } else if (a === '--return-after') {
      const s = Number(next());
      if (!Number.isFinite(s) || s < 0) throw usage('--return-after needs a number of seconds >= 0');
      options['returnAfterMs'] = Math.round(s * 1000);
    } else if (a === '-h' || a === '--help') {
      throw usage('help');
    } else if (a.startsWith('-')) {
      throw usage(`unknown option ${a}`);
    } else positional.push(a);
  }
  const base = url !== undefined ? { url: url.replace(/\/$/, '') } : {};
  const [cmd, ...args] = positional;
  if (cmd === undefined) throw usage('missing command');
  const tooMany = (n: number): void => {
    if (args.length > n) throw usage(`too many arguments for ${cmd}`);
  };
  switch (cmd) {
    case 'list':
      tooMany(0);
      return { method: 'GET', path: '/devices', ...base };
    case 'scenarios':
    case 'catalogue':
      tooMany(0);
      return { method: 'GET', path: `/${cmd}`, ...base };
    case 'clear': {
      tooMany(1);
      const key = args[0];
      if (key === undefined) throw usage('missing <scenario-id|target>');
      return { method: 'DELETE', path: `/scenario/${encodeURIComponent(key)}`, ...base };
    }
    case 'online':
      tooMany(1);
      return { method: 'POST', path: '/online', body: { deviceId: id(args[0], 'device') }, ...base };
    case 'home-online':
      tooMany(1);
      return { method: 'DELETE', path: `/scenario/${encodeURIComponent(id(args[0], 'home'))}`, ...base };
  }
  const c = COMMANDS[cmd];
  if (c === undefined) throw usage(`unknown command "${cmd}"`);
  let target: string;
  const opts: Record<string, unknown> = { ...c.options, ...options };
  switch (c.args) {
    case 'room': {
      const maxArgs = cmd === 'fire' ? 3 : 2;
      tooMany(maxArgs);
      target = `${id(args[0], 'home')}/${id(args[1], 'room')}`;
      if (args[2] !== undefined) {
        if (args[2] !== 'flaming' && args[2] !== 'smouldering') throw usage(`fire kind must be flaming or smouldering, not "${args[2]}"`);
        opts['kind'] = args[2];
      }
      break;
    }
    case 'resident-or-room':
      tooMany(2);
      target = args[1] !== undefined ? `${id(args[0], 'home')}/${id(args[1], 'room')}` : id(args[0], 'resident');
      break;
    case 'any':
      tooMany(2);
      target = args[1] !== undefined ? `${id(args[0], 'home')}/${id(args[1], 'room')}` : id(args[0], 'device|home');
      break;
    default:
      tooMany(1);
      target = id(args[0], c.args);
  }
  return { method: 'POST', path: '/scenario', body: { name: c.scenario, target, options: opts }, ...base };
}
