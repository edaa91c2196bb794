export { buildDirFor, buildProduction, builtScript } from '../../scripts/production-build.ts';

/**
 * Set by the test run's global setup (test/support/global-setup.ts) to the production build it
 * made: processes that tests start run from it, as in production (support/process.ts). Unset (a
 * script run outside vitest) they run from source through tsx.
 */
export const BUILD_ENV = 'CAREWATCH_TEST_BUILD';
