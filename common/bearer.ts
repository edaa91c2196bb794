/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), trimmed; undefined for no
 * header or another scheme. The one parser of it: login tokens (alerts), the metrics token (every
 * process), and the token a web node forwards to its peers.
 */
export function bearerToken(authorization: unknown): string | undefined {
  return typeof authorization === 'string' && authorization.startsWith('Bearer ') ? authorization.slice(7).trim() : undefined;
}
