import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Fields censored in every log line, wherever a component puts them (issue 12: no secret, password
 * or token in any log line; test/security/log-secrets.test.ts greps a full run for them). Today no
 * component logs one; this keeps a future `log.debug({ body })` or `{ config }` from doing so.
 */
export const LOG_REDACT = {
  paths: [
    'password',
    'secret',
    'token',
    'authorization',
    'cookie',
    '*.password',
    '*.secret',
    '*.token',
    '*.authorization',
    '*.cookie',
    '*.tokenSecret',
    '*.alertsPassword',
    '*.ingestPassword',
    '*.simPassword',
    'auth.token',
    'req.headers.authorization',
    'req.headers.cookie',
  ],
  censor: '[redacted]',
};

/** Builds the process logger once in main.ts; components get `logger.child({ component })`. */
export function createLogger(name: string, level: LevelWithSilent = 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid }, redact: LOG_REDACT });
}
