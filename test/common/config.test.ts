import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ConfigError, envName, loadConfig } from '../../common/config.ts';

const Schema = Type.Object({
  influxUrl: Type.String({ pattern: '^https?://', description: 'an http:// URL' }),
  brokerPort: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
  verbose: Type.Boolean({ default: false }),
  mode: Type.Union([Type.Literal('a'), Type.Literal('b')], { default: 'a' }),
  redisUrl: Type.Optional(Type.String()),
});

describe('loadConfig', () => {
  it('maps camelCase keys to CAREWATCH_SNAKE_CASE', () => {
    expect(envName('influxUrl')).toBe('CAREWATCH_INFLUX_URL');
    expect(envName('brokerWsPort')).toBe('CAREWATCH_BROKER_WS_PORT');
  });

  it('converts numbers and booleans, applies defaults, leaves optional keys out, freezes', () => {
    const c = loadConfig(Schema, { CAREWATCH_INFLUX_URL: 'http://x:8086', CAREWATCH_VERBOSE: 'yes' });
    expect(c).toEqual({ influxUrl: 'http://x:8086', brokerPort: 1883, verbose: true, mode: 'a' });
    expect(Object.isFrozen(c)).toBe(true);
    expect(loadConfig(Schema, { CAREWATCH_INFLUX_URL: 'http://x', CAREWATCH_BROKER_PORT: '0' }).brokerPort).toBe(0);
  });

  it('reports every bad or missing variable by name with what it expects', () => {
    let error: unknown;
    try {
      loadConfig(Schema, { CAREWATCH_BROKER_PORT: '70000', CAREWATCH_MODE: 'c', CAREWATCH_VERBOSE: 'maybe' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems[0]).toBe('CAREWATCH_INFLUX_URL is missing: expected an http:// URL');
    expect(problems[1]).toMatch(/^CAREWATCH_BROKER_PORT="70000" is invalid: expected integer >= 0 and <= 65535/);
    expect(problems[2]).toMatch(/^CAREWATCH_VERBOSE="maybe" is invalid/);
    expect(problems[3]).toMatch(/^CAREWATCH_MODE="c" is invalid: expected one of "a", "b"/);
  });

  it('never prints the value of a password, secret or token', () => {
    const Secrets = Type.Object({ tokenSecret: Type.String({ minLength: 32 }), ingestPassword: Type.String({ minLength: 8 }), tokenTtlS: Type.Integer({ minimum: 60 }) });
    let message = '';
    try {
      loadConfig(Secrets, { CAREWATCH_TOKEN_SECRET: 'my-real-production-secret-31chr', CAREWATCH_INGEST_PASSWORD: 'hunter2', CAREWATCH_TOKEN_TTL_S: '5' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('CAREWATCH_TOKEN_SECRET=<redacted, 31 chars> is invalid');
    expect(message).toContain('CAREWATCH_INGEST_PASSWORD=<redacted, 7 chars> is invalid');
    expect(message).not.toContain('my-real-production-secret');
    expect(message).not.toContain('hunter2');
    expect(message).toContain('CAREWATCH_TOKEN_TTL_S="5" is invalid'); // a duration is not a secret
  });

  it('reads a secret from the file CAREWATCH_X_FILE names (Docker secrets), never a non-secret, and refuses both at once', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'cw-config-'));
    try {
      const S = Type.Object({ alertsPassword: Type.String({ minLength: 8 }), influxUrl: Type.Optional(Type.String()) });
      await writeFile(join(dir, 'pw'), 'from-the-secret-file\n');
      await writeFile(join(dir, 'url'), 'http://from-a-file:8086\n');
      expect(loadConfig(S, { CAREWATCH_ALERTS_PASSWORD_FILE: join(dir, 'pw') }).alertsPassword).toBe('from-the-secret-file');
      // Only secrets are read from files: CAREWATCH_INFLUX_URL_FILE means nothing.
      expect(loadConfig(S, { CAREWATCH_ALERTS_PASSWORD_FILE: join(dir, 'pw'), CAREWATCH_INFLUX_URL_FILE: join(dir, 'url') }).influxUrl).toBeUndefined();
      expect(() => loadConfig(S, { CAREWATCH_ALERTS_PASSWORD: 'in-the-environment', CAREWATCH_ALERTS_PASSWORD_FILE: join(dir, 'pw') })).toThrow(/CAREWATCH_ALERTS_PASSWORD and CAREWATCH_ALERTS_PASSWORD_FILE are both set/);
      expect(() => loadConfig(S, { CAREWATCH_ALERTS_PASSWORD_FILE: join(dir, 'missing') })).toThrow(/CAREWATCH_ALERTS_PASSWORD_FILE=.* cannot be read: ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
