/**
 * The one error type of the InfluxDB adapter (common/influx/). Every failure of a write or a query
 * is an InfluxError with a stable code, the HTTP status when InfluxDB answered, and whether trying
 * the same request again later can succeed. Callers decide on `retryable` and `code`, never on the
 * message text.
 */
export type InfluxErrorCode =
  /** No connection (refused, reset, DNS): InfluxDB down or restarting. Retryable. */
  | 'INFLUX_UNREACHABLE'
  /** No answer within the request timeout. Retryable. */
  | 'INFLUX_TIMEOUT'
  /** 404 "database not found" on a write: create the database (common/influx-schema.ts), then retry. */
  | 'INFLUX_DATABASE_NOT_FOUND'
  /** 401/403: credentials wrong or missing; retryable once an operator fixes them. */
  | 'INFLUX_UNAUTHORIZED'
  /** 5xx or an answer that is not InfluxDB's JSON (a proxy's error page). Retryable. */
  | 'INFLUX_SERVER'
  /**
   * 5xx "no space left on device": InfluxDB's disk is full. Retryable, but InfluxDB 1.6 went on
   * refusing writes to the shard that hit it, even once there was room, until it was restarted
   * (observed in session 20 with the setup of test/ingest/influx-disk-full.test.ts; other shards
   * took writes again).
   */
  | 'INFLUX_DISK_FULL'
  /** 400 on a write: a line InfluxDB refuses (unparsable, field type conflict). The valid lines were written. Not retryable. */
  | 'INFLUX_REJECTED'
  /** 400 "partial write: points beyond retention policy dropped": those points can never be stored; the rest were. Not retryable. */
  | 'INFLUX_BEYOND_RETENTION'
  /** 413: the body is over the server's max-body-size; split it. Not retryable as is. */
  | 'INFLUX_TOO_LARGE'
  /** An InfluxQL statement InfluxDB refused (syntax, unknown function). Not retryable. */
  | 'INFLUX_QUERY'
  /** A query's answer over the reader's byte bound (reader.ts maxAnswerBytes): narrow the query. Not retryable as is. */
  | 'INFLUX_ANSWER_TOO_LARGE'
  /** A value the line protocol cannot carry (a newline or backslash in a name or tag, a non-finite number). Not retryable. */
  | 'INFLUX_UNENCODABLE';

const RETRYABLE: Readonly<Record<InfluxErrorCode, boolean>> = {
  INFLUX_UNREACHABLE: true,
  INFLUX_TIMEOUT: true,
  INFLUX_DATABASE_NOT_FOUND: true,
  INFLUX_UNAUTHORIZED: true,
  INFLUX_SERVER: true,
  INFLUX_DISK_FULL: true,
  INFLUX_REJECTED: false,
  INFLUX_BEYOND_RETENTION: false,
  INFLUX_TOO_LARGE: false,
  INFLUX_QUERY: false,
  INFLUX_ANSWER_TOO_LARGE: false,
  INFLUX_UNENCODABLE: false,
};

export const INFLUX_ERROR_CODES = Object.keys(RETRYABLE) as readonly InfluxErrorCode[];

export class InfluxError extends Error {
  override readonly name = 'InfluxError';
  readonly retryable: boolean;
  constructor(
    readonly code: InfluxErrorCode,
    message: string,
    /** The HTTP status InfluxDB answered with, when it answered. */
    readonly status?: number,
  ) {
    super(message);
    this.retryable = RETRYABLE[code];
  }
}

export function isInfluxError(err: unknown): err is InfluxError {
  return err instanceof InfluxError;
}

/** InfluxDB's `{"error": "..."}` body, or the start of whatever else it sent. */
export function errorText(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: unknown }).error;
    if (typeof e === 'string') return e;
  } catch {
    // not JSON
  }
  return body.slice(0, 500);
}

/** A 5xx: INFLUX_DISK_FULL when its text is the server's "no space left on device" (ENOSPC), else INFLUX_SERVER. */
export function serverError(status: number, text: string, msg: string): InfluxError {
  return new InfluxError(/no space left on device/i.test(text) ? 'INFLUX_DISK_FULL' : 'INFLUX_SERVER', msg, status);
}

/** The error for a non-2xx answer to a write (InfluxDB 1.x /write, docs "HTTP response summary"). */
export function writeError(status: number, body: string): InfluxError {
  const text = errorText(body);
  const msg = `InfluxDB write failed with ${status}: ${text}`;
  if (status === 400) return new InfluxError(/^partial write: points beyond retention policy dropped=\d+$/.test(text.trim()) ? 'INFLUX_BEYOND_RETENTION' : 'INFLUX_REJECTED', msg, status);
  if (status === 404 && text.includes('database not found')) return new InfluxError('INFLUX_DATABASE_NOT_FOUND', msg, status);
  if (status === 413) return new InfluxError('INFLUX_TOO_LARGE', msg, status);
  if (status === 401 || status === 403) return new InfluxError('INFLUX_UNAUTHORIZED', msg, status);
  if (status >= 500) return serverError(status, text, msg);
  return new InfluxError('INFLUX_SERVER', msg, status);
}

/** A transport failure (no HTTP answer) as an InfluxError. */
export function transportError(err: unknown, timeoutMs: number): InfluxError {
  if (err instanceof InfluxError) return err;
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return new InfluxError('INFLUX_TIMEOUT', `InfluxDB did not answer within ${timeoutMs} ms`);
  const detail = e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
  return new InfluxError('INFLUX_UNREACHABLE', `InfluxDB unreachable: ${detail}`);
}
