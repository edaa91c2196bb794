/**
 * The alerts process's error catalogue: one stable code per failure, shared by logs, the HTTP API
 * (contract/api.ts ApiError { code, message }) and socket.io replies (AckResult).
 */
export const ALERT_ERRORS = {
  API_BAD_REQUEST: { status: 400, message: 'the request does not match the schema' },
  API_NOT_FOUND: { status: 404, message: 'no such resource' },
  API_INTERNAL: { status: 500, message: 'internal error' },
  AUTH_REQUIRED: { status: 401, message: 'a valid bearer token is required' },
  AUTH_INVALID_CREDENTIALS: { status: 401, message: 'wrong username or password' },
  AUTH_DEMO_SECRET_REFUSED: { status: 403, message: 'demo credentials are refused in production mode' },
  AUTH_FORBIDDEN: { status: 403, message: 'your role may not do this' },
  AUTH_RATE_LIMITED: { status: 429, message: 'too many failed logins; wait and try again (see Retry-After)' },
  AUTH_BUSY: { status: 503, message: 'too many logins in progress; try again shortly' },
  ALERT_NOT_FOUND: { status: 404, message: 'no such alert' },
  ALERT_ALREADY_ACKNOWLEDGED: { status: 409, message: 'the alert is already acknowledged' },
  ALERT_NOT_ACKNOWLEDGED: { status: 409, message: 'acknowledge the alert before confirming it' },
  ALERT_ALREADY_CONFIRMED: { status: 409, message: 'the alert is already confirmed' },
  ALERT_NOT_CONFIRMED: { status: 409, message: 'a fire alarm must be confirmed (real_fire, false_alarm, test or fault) before it is resolved' },
  ALERT_COMMENT_REQUIRED: { status: 400, message: 'say what was done (a comment) to resolve this alert' },
  ALERT_RESOLVED: { status: 409, message: 'the alert is already resolved' },
  INCIDENT_NOT_FOUND: { status: 404, message: 'no such incident' },
  INCIDENT_ALREADY_ACKNOWLEDGED: { status: 409, message: 'the incident is already acknowledged' },
  INCIDENT_NOT_ACKNOWLEDGED: { status: 409, message: 'acknowledge the incident before confirming it' },
  INCIDENT_ALREADY_CONFIRMED: { status: 409, message: 'the incident is already confirmed' },
  INCIDENT_NOT_CONFIRMED: { status: 409, message: 'an incident with a latched fire alarm must be confirmed (real_fire, false_alarm, test or fault) before it is resolved' },
  INCIDENT_COMMENT_REQUIRED: { status: 400, message: 'say what was done (a comment) to resolve this incident' },
  INCIDENT_RESOLVED: { status: 409, message: 'the incident is already resolved' },
  RESIDENT_NOT_FOUND: { status: 404, message: 'no such resident' },
  HOME_NOT_FOUND: { status: 404, message: 'no such home' },
  // Test and maintenance mode (issue 11, alerts/disablements/).
  DISABLEMENT_NOT_FOUND: { status: 404, message: 'no such disablement' },
  DISABLEMENT_TARGET_NOT_FOUND: { status: 404, message: 'no such device or room in this home' },
  DISABLEMENT_CARE_DEVICE: { status: 400, message: "a care device is never disabled: a resident's call always gets through" },
  DISABLEMENT_NOTHING_TO_DISABLE: { status: 400, message: 'the target has no fire-system device to disable' },
  DISABLEMENT_TOO_LONG: { status: 400, message: 'a point may be disabled for 1 minute to 24 hours at a time' },
  DISABLEMENT_ENDED: { status: 409, message: 'the disablement has already ended' },
  DISABLEMENT_LIMIT: { status: 409, message: 'too many disablements in force in this home; end some first' },
  // On-call rosters (issue 15, alerts/notify/).
  ROSTER_INVALID: { status: 400, message: 'the roster is not valid for this home' },
  PROVIDER_NOT_FOUND: { status: 404, message: 'no such home-care provider' },
  // Delivery receipts from an SMS / voice gateway (issue 15, alerts/notify/receipt-routes.ts).
  NOTIFY_RECEIPT_UNKNOWN_CHANNEL: { status: 404, message: 'no channel with delivery receipts has this id' },
  NOTIFY_RECEIPT_BAD_SIGNATURE: { status: 401, message: 'the receipt signature is missing, wrong or too old (X-Carewatch-Signature: t=<unix s>,v1=<HMAC-SHA256>)' },
  NOTIFY_RECEIPT_BAD_BODY: { status: 400, message: 'the receipt is not JSON or lacks the message id or a known status' },
  NOTIFY_RECEIPT_UNKNOWN_MESSAGE: { status: 404, message: 'no notification sent by this channel has this message id (or it is older than the receipts are kept)' },
  // Issue 14: a page on one node acting on an alert owned by another (alerts/socket-cluster.ts).
  CLUSTER_OWNER_UNREACHABLE: { status: 503, message: 'the node that owns this home did not answer in time; try again' },
  // Issue 14: test/maintenance mode and rosters are kept by the home's owner; another node's copy would suppress or notify nothing.
  CLUSTER_NOT_OWNER: { status: 421, message: 'this node does not own the home: send the request to the alerts instance whose CAREWATCH_HOMES lists it (docs/scaling.md)' },
  // Issue 14: home coverage across partitioned instances (alerts/home-coverage.ts): /health problems and log codes.
  ALERTS_HOME_UNOWNED: { status: 503, message: 'a home of the registry is owned by no alerts instance: nobody evaluates its alarms' },
  ALERTS_HOME_OWNED_TWICE: { status: 503, message: 'a home is owned by two alerts instances: its alarms are raised twice' },
  // Issue 15: production refuses a notification setup that would reach nobody or leak (alerts/config.ts notifyProductionProblems).
  ALERTS_NOTIFY_CONFIG_MISSING: { status: 500, message: 'production mode needs CAREWATCH_NOTIFY_CONFIG: without it alarms reach only open pages' },
  ALERTS_NOTIFY_DEMO_SECRET: { status: 500, message: 'a notification channel carries a demo secret (starts with "demo-"): refused in production mode' },
  ALERTS_NOTIFY_INSECURE_URL: { status: 500, message: 'a notification address is plain http:// (residents\' names in clear): refused in production mode' },
  ALERTS_NOTIFY_DEMO_URL: { status: 500, message: 'a notification address or the page link is a demo, example or loopback address: refused in production mode' },
  // Issue 15: /health problem while a channel's recent attempts all fail (alerts/notify/channel-health.ts).
  ALERTS_NOTIFY_CHANNEL_FAILING: { status: 503, message: 'a notification channel has failed its recent attempts for minutes: people away from the page are not reached' },
} as const;

export type AlertErrorCode = keyof typeof ALERT_ERRORS;

export class AlertsError extends Error {
  readonly status: number;
  constructor(readonly code: AlertErrorCode, message?: string) {
    super(message ?? ALERT_ERRORS[code].message);
    this.status = ALERT_ERRORS[code].status;
  }
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; code: AlertErrorCode; message: string };

export function fail<T>(code: AlertErrorCode, message?: string): Outcome<T> {
  return { ok: false, code, message: message ?? ALERT_ERRORS[code].message };
}

/** The value of an outcome, or its failure thrown as an AlertsError (the routes' error handler answers it). */
export function unwrap<T>(r: Outcome<T>): T {
  if (!r.ok) throw new AlertsError(r.code, r.message);
  return r.value;
}
