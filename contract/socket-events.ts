import type { AlertMessage, Confirmation } from './payloads.ts';

/**
 * socket.io event maps between the alerts process and browsers. A socket authenticates with the
 * token from `POST /api/login` (handshake `auth: { token }`); the server puts it in the rooms its
 * user may see: `home:{homeId}` for staff and directors, `bureau` for bureau officers and admins.
 */

export const BUREAU_ROOM = 'bureau';
export function homeRoom(homeId: string): string {
  return `home:${homeId}`;
}

export type AckResult = { ok: true; alert: AlertMessage } | { ok: false; error: string; code: string };

export interface ServerToClientEvents {
  /** One alert change. */
  alert: (alert: AlertMessage) => void;
  /** Sent once after connecting: every open alert the user may see, so a reconnect re-syncs. */
  snapshot: (alerts: AlertMessage[]) => void;
}

export interface ClientToServerEvents {
  ack: (alertId: string, reply: (result: AckResult) => void) => void;
  confirm: (alertId: string, confirmation: Confirmation, comment: string, reply: (result: AckResult) => void) => void;
  resolve: (alertId: string, comment: string, reply: (result: AckResult) => void) => void;
}

export interface SocketData {
  username: string;
  role: string;
  homeId?: string;
}
