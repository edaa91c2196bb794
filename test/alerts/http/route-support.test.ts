import Fastify from 'fastify';
import { expect, it } from 'vitest';
import { installErrorHandler, type DashboardErrorCode } from '../../../alerts/http/route-support.ts';
import { InfluxError } from '../../../common/influx/errors.ts';

/**
 * The dashboard routes' one error shape: InfluxDB down or slow is 503 (try again later); a query
 * InfluxDB refused is our own fault, 500 with its own code, never dressed as an outage. (InfluxDB
 * refuses only a query we built wrong, so the refusal is thrown here rather than provoked.)
 */
it('answers 503 INFLUX_UNAVAILABLE while InfluxDB is away, 500 INFLUX_FAILED for a query it refused, and counts each', async () => {
  const app = Fastify({ logger: false });
  const counted: DashboardErrorCode[] = [];
  installErrorHandler(app, (code) => counted.push(code));
  app.get('/down', async () => {
    throw new InfluxError('INFLUX_UNREACHABLE', 'InfluxDB unreachable: ECONNREFUSED');
  });
  app.get('/slow', async () => {
    throw new InfluxError('INFLUX_TIMEOUT', 'InfluxDB did not answer within 10000 ms');
  });
  app.get('/refused', async () => {
    throw new InfluxError('INFLUX_QUERY', 'InfluxDB: error parsing query', 400);
  });
  try {
    const answers = await Promise.all(['/down', '/slow', '/refused'].map(async (url) => {
      const r = await app.inject({ url });
      return [r.statusCode, (r.json() as { code: string }).code];
    }));
    expect(answers).toEqual([
      [503, 'INFLUX_UNAVAILABLE'],
      [503, 'INFLUX_UNAVAILABLE'],
      [500, 'INFLUX_FAILED'],
    ]);
    expect(counted.sort()).toEqual(['INFLUX_FAILED', 'INFLUX_UNAVAILABLE', 'INFLUX_UNAVAILABLE']);
  } finally {
    await app.close();
  }
});
