import { type TObject, type Static, type TSchema, Kind } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileSync } from 'node:fs';

/**
 * Reads a process's configuration from environment variables with the CAREWATCH_ prefix, once, in
 * its main.ts. Each property of `schema` in camelCase maps to CAREWATCH_SNAKE_CASE; numbers and
 * booleans are converted, defaults applied, and any problem is reported naming the variable and
 * what it expects. The result is frozen.
 *
 * A secret (password, secret, token) may instead be given as a file: CAREWATCH_X_FILE names a file
 * whose content (one trailing newline removed) is the value, the convention of Docker and compose
 * secrets (`/run/secrets/…`), so a secret need not sit in the environment where `docker inspect` and
 * child processes see it. Setting both is an error: which one wins would be a guess.
 */
export const ENV_PREFIX = 'CAREWATCH_';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

export function envName(key: string): string {
  return ENV_PREFIX + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function describe(schema: TSchema): string {
  if (typeof schema.description === 'string') return schema.description;
  const kind = String(schema[Kind]);
  if (kind === 'Union' && Array.isArray(schema.anyOf)) return `one of ${schema.anyOf.map((s: TSchema) => JSON.stringify(s.const)).join(', ')}`;
  const bounds = [schema.minimum !== undefined ? `>= ${schema.minimum}` : '', schema.maximum !== undefined ? `<= ${schema.maximum}` : ''].filter(Boolean).join(' and ');
  return `${kind.toLowerCase()}${bounds ? ` ${bounds}` : ''}${schema.pattern ? ` matching ${schema.pattern}` : ''}`;
}

/** Passwords, secrets and tokens, by name or marked `{ secret: true }` in the schema. */
function isSecret(key: string, schema: TSchema): boolean {
  return schema.secret === true || /password|secret|token(?!TtlS)/i.test(key);
}

function coerce(raw: string, schema: TSchema): unknown {
  const kind = String(schema[Kind]);
  if (kind === 'Integer' || kind === 'Number') return raw.trim() === '' ? raw : Number(raw);
  if (kind === 'Boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
  }
  return raw;
}

export interface LoadConfigOptions {
  /** Reads a `*_FILE` secret (default: the file system). */
  readonly readFile?: (path: string) => string;
}

export function loadConfig<T extends TObject>(schema: T, env: Readonly<Record<string, string | undefined>>, opts: LoadConfigOptions = {}): Readonly<Static<T>> {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  const readFile = opts.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  for (const [key, prop] of Object.entries(schema.properties) as [string, TSchema][]) {
    const name = envName(key);
    let raw = env[name];
    const file = isSecret(key, prop) ? env[`${name}_FILE`] : undefined;
    if (file !== undefined && file !== '') {
      if (raw !== undefined && raw !== '') {
        problems.push(`${name} and ${name}_FILE are both set: set one`);
        continue;
      }
      try {
        raw = readFile(file).replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`${name}_FILE=${JSON.stringify(file)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        continue;
      }
    }
    if (raw === undefined || raw === '') {
      if (prop.default !== undefined) out[key] = prop.default;
      else if (!(schema.required ?? []).includes(key)) continue;
      else problems.push(`${name} is missing: expected ${describe(prop)}`);
      continue;
    }
    const value = coerce(raw, prop);
    if (!Value.Check(prop, value)) {
      // Never echo a secret into logs: an almost-right production secret is still a secret.
      const shown = isSecret(key, prop) ? `<redacted, ${raw.length} chars>` : JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw);
      problems.push(`${name}=${shown} is invalid: expected ${describe(prop)}`);
      continue;
    }
    out[key] = value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out) as Readonly<Static<T>>;
}
