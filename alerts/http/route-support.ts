import { Value } from '@sinclair/typebox/value';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { AlertsError } from '../errors.ts';
import type { Actor } from '../access.ts';
import { InfluxError } from '../../common/influx/errors.ts';

/**
 * Shared plumbing of the dashboard plugins (live state, history, statistics): who is asking, and
 * one error shape `{ code, message }` (contract/api.ts ApiError) with stable codes.
 */

/** Resolves the bearer token of a request to its user, or undefined when absent/invalid/expired. */
export type ActorOf = (request: FastifyRequest) => Actor | undefined | Promise<Actor | undefined>;

/** Codes the dashboard plugins answer with (the first four are the alerts catalogue's own). */
export type DashboardErrorCode = 'API_BAD_REQUEST' | 'API_NOT_FOUND' | 'AUTH_REQUIRED' | 'AUTH_FORBIDDEN' | 'INFLUX_UNAVAILABLE' | 'INFLUX_FAILED' | 'API_INTERNAL';

export class RouteError extends Error {
  constructor(
    readonly status: number,
    readonly code: DashboardErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Optional hook so the process can count errors by code (metrics); logging is done here. */
export type CountError = (code: DashboardErrorCode) => void;

export function installErrorHandler(app: FastifyInstance, count?: CountError): void {
  app.setErrorHandler((err: FastifyError | RouteError | InfluxError, request, reply) => {
    let status = 500;
    let code: DashboardErrorCode = 'API_INTERNAL';
    let message = 'internal error';
    if (err instanceof RouteError) {
      status = err.status;
      code = err.code;
      message = err.message;
    } else if (err instanceof InfluxError) {
      // Before isCodedError: an InfluxError's `status` is InfluxDB's answer, not ours. Down, slow or
      // restarting (retryable) is 503: try again later. A query InfluxDB refused is our fault, 500
      // with its own code, so a monitor does not wait for it to pass.
      status = err.retryable ? 503 : 500;
      code = err.retryable ? 'INFLUX_UNAVAILABLE' : 'INFLUX_FAILED';
      message = err.message;
    } else if ('validation' in err && err.validation !== undefined) {
      status = 400;
      code = 'API_BAD_REQUEST';
      message = err.message;
    } else if (isCodedError(err)) {
      // An error of the engine's own catalogue (e.g. AlertsError AUTH_REQUIRED thrown by actorOf) keeps its code.
      status = err.status;
      code = err.code as DashboardErrorCode;
      message = err.message;
    }
    count?.(code);
    if (status >= 500) request.log.error({ err, code }, 'dashboard request failed');
    else request.log.info({ code, url: request.url, reason: message }, 'dashboard request refused');
    void reply.code(status).send({ code, message });
  });
}

function isCodedError(err: unknown): err is { status: number; code: string; message: string } {
  const e = err as { status?: unknown; code?: unknown };
  return typeof e.status === 'number' && e.status >= 400 && e.status < 600 && typeof e.code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(e.code);
}

export async function requireActor(actorOf: ActorOf, request: FastifyRequest): Promise<Actor> {
  const actor = await actorOf(request);
  if (actor === undefined) throw new RouteError(401, 'AUTH_REQUIRED', 'a valid bearer token is required');
  return actor;
}

/** Bodies are optional for ack/resolve (a button press sends none), so they are checked here. */
export function optionalBody<T>(schema: Parameters<typeof Value.Check>[0], body: unknown): T {
  const value = body ?? {};
  if (!Value.Check(schema, value)) throw new AlertsError('API_BAD_REQUEST', [...Value.Errors(schema, value)].map((e) => `${e.path || '/'} ${e.message}`)[0]);
  return value as T;
}
