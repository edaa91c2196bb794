import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Builds the process logger once in main.ts; components get `logger.child({ component })`. */
export function createLogger(name: string, level: LevelWithSilent = 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
