import { afterAll, beforeAll, beforeEach } from 'vitest';

/**
 * The process's unhandled rejections and uncaught exceptions during each test of the calling file
 * (registers the file's hooks; emptied before each test). Under Node's defaults either one ends a
 * real process, so a test that provokes one from a library has found a crash.
 */
export function watchProcessFaults(): { readonly unhandled: unknown[]; readonly uncaught: unknown[] } {
  const unhandled: unknown[] = [];
  const uncaught: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  const onUncaught = (err: unknown): void => {
    uncaught.push(err);
  };
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUncaught);
  });
  beforeEach(() => {
    unhandled.length = 0;
    uncaught.length = 0;
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUncaught);
  });
  return { unhandled, uncaught };
}
