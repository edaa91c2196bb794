import type { Disablement, DisablementRequest, IncidentMessage } from './incidents.ts';
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
export type IncidentResult = { ok: true; incident: IncidentMessage } | { ok: false; error: string; code: string };
export type DisablementResult = { ok: true; disablement: Disablement } | { ok: false; error: string; code: string };

export interface ServerToClientEvents {
  /** One alert change. */
  alert: (alert: AlertMessage) => void;
  /** Sent once after connecting: every open alert the user may see, so a reconnect re-syncs. */
  snapshot: (alerts: AlertMessage[]) => void;
  /** One incident change (issue 11): the page shows one card per incident. */
  incident: (incident: IncidentMessage) => void;
  /** Sent once after connecting, after `snapshot`: every open incident the user may see. */
  incidents: (incidents: IncidentMessage[]) => void;
  /** The disablements in force that the user may see (staff: their home; bureau: all), on connect and on every change. */
  disablements: (disablements: Disablement[]) => void;
}

export interface ClientToServerEvents {
  ack: (alertId: string, reply: (result: AckResult) => void) => void;
  confirm: (alertId: string, confirmation: Confirmation, comment: string, reply: (result: AckResult) => void) => void;
  resolve: (alertId: string, comment: string, reply: (result: AckResult) => void) => void;
  /** Acknowledging an incident acknowledges its members. */
  ackIncident: (incidentId: string, reply: (result: IncidentResult) => void) => void;
  confirmIncident: (incidentId: string, confirmation: Confirmation, comment: string, reply: (result: IncidentResult) => void) => void;
  resolveIncident: (incidentId: string, comment: string, reply: (result: IncidentResult) => void) => void;
  /** Directors (their home) and admins: put a point in test or disabled mode; end one early. */
  disable: (request: DisablementRequest, reply: (result: DisablementResult) => void) => void;
  enable: (disablementId: string, reply: (result: DisablementResult) => void) => void;
}

export interface SocketData {
  username: string;
  role: string;
  homeId?: string;
  /** Role `provider` (issue 15): its provider and households, as verified at the handshake. */
  providerId?: string;
  homeIds?: string[];
}
