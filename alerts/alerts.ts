import { join, resolve } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerToken } from '../common/bearer.ts';
import { systemClock, type Clock, type ClockTimer } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { RegistryIndex } from '../contract/registry-index.ts';
import { createBaselineService, type BaselineService, type BaselineServiceDeps } from './baselines.ts';
import type { CareActionInput } from './care-action.ts';
import type { AlertsConfig } from './config.ts';
import { createEngine, ruleFailureOf, type Engine, type RuleStates } from './engine.ts';
import type { EscalationPolicy } from './escalation.ts';
import { buildApp } from './http/app.ts';
import { createCareStateView } from './http/care-state.ts';
import { openInfluxDatabase } from '../common/influx/database.ts';
import { createTokenService } from './http/token.ts';
import { createSignOut } from './sign-out.ts';
import { createLifecycle, type AlertChange, type HeldCondition, type Lifecycle, type StoredAlert } from './lifecycle.ts';
import type { IncidentAuditEntry, IncidentChange, StoredIncident } from './incidents/book.ts';
import { createMqttAdapter, type MqttAdapter } from './mqtt.ts';
import { createAlertStore, type AlertStore } from './persistence/alert-store.ts';
import { createNews2History, type News2History } from './persistence/care-history.ts';
import { createTurnHistory, type TurnHistory } from './persistence/turn-history.ts';
import { residentRoutes } from './http/resident-routes.ts';
import type { CareRuleContext } from './rules/care/care-context.ts';
import type { Fact } from './rules/facts.ts';
import type { Rule, RuleContext, RuleInput } from './rules/types.ts';
import { createSocketHub, type SocketHub } from './socket.ts';
import { createDisablementStore, type DisablementStore } from './disablements/store.ts';
import type { HeldSignal } from './disablements/core.ts';
import { disablementRoutes } from './http/disablement-routes.ts';
import type { Signal } from './rules/types.ts';
import { readJson, writeTextAtomic } from './state-file.ts';
import { sliceCut, type CutPart } from './snapshot-text.ts';
import { snapshotDelayMs, SNAPSHOT_EVERY_MS } from './snapshot-pace.ts';
import { createAlertsMetrics, registerNotifyMetrics } from './metrics.ts';
import type { ServerTls } from '../common/tls.ts';
import type { NotifyConfig } from './notify/config.ts';
import { createNotifier, type Notifier } from './notify/notifier.ts';
import { createChannelHealth } from './notify/channel-health.ts';
import { createRosterStore, type RosterStore } from './notify/roster-store.ts';
import { rosterRoutes } from './notify/roster-routes.ts';
import { createReceiptBook, receiptRoutes, type ReceiptBook } from './notify/receipt-routes.ts';
import { buildChannels } from './notify/config.ts';
import { createRejectionLog } from '../common/rejection-log.ts';
import type { NotificationChannel } from './notify/channel.ts';
import { parseHomes } from '../common/homes.ts';
import { createCoverage, type Coverage } from './home-coverage.ts';
import { counterFrom, gaugeFrom } from '../common/metrics.ts';
import { createHomeEngines, homeStatePath, restrictRegistry, type HomeEngines } from './partition.ts';
import { createSocketCluster, type SocketCluster } from './socket-cluster.ts';
import type { RestPeers } from './http/peer-rest.ts';
import { canSeeAlert, canSeeHome, type Actor } from './access.ts';
import { ALERTS_CLIENT_ID } from './mqtt.ts';

const SNAPSHOT_FILE = 'rule-states.json';
const JOURNAL_FILE = 'alert-journal.jsonl';
const CARE_JOURNAL_FILE = 'care-journal.jsonl';
const TURN_JOURNAL_FILE = 'turn-journal.jsonl';
const DISABLEMENTS_FILE = 'disablements.json';
const DISABLEMENT_JOURNAL_FILE = 'disablement-journal.jsonl';
const SIGNED_OUT_FILE = 'signed-out-tokens.json';

type RuleOptionKey = 'careNightHours' | 'siteUtcOffsetMin' | 'bedReturnWithinMin' | 'escalationCritical' | 'escalationHigh' | 'escalationMedium' | 'escalationLow';

export interface AlertsDeps {
  /** Rule options (night hours, site time zone) are main.ts's business: it composes the rules. */
  readonly config: Omit<AlertsConfig, 'registry' | 'logLevel' | RuleOptionKey> & Partial<Pick<AlertsConfig, 'registry' | 'logLevel' | RuleOptionKey>>;
  readonly registry: RegistryIndex;
  readonly logger: Logger;
  readonly rules: readonly Rule[];
  readonly clock?: Clock;
  /** Timings of the home coverage check (alerts/home-coverage.ts); tests shorten them. */
  readonly coverage?: { readonly everyMs?: number; readonly ttlMs?: number; readonly graceMs?: number };
  /** NODE_ENV=production: demo logins refused, a token secret required. */
  readonly production?: boolean;
  readonly policy?: EscalationPolicy;
  /** Off in tests that drive inputs directly. */
  readonly mqtt?: boolean;
  /** Personal baselines (issue 4): learning settings, or false to run on defaults and registry limits only. */
  readonly baselines?: false | Pick<BaselineServiceDeps, 'refreshMs' | 'windowMs' | 'bucketMs' | 'learn'>;
  /** A resident's NEWS2 score is written to InfluxDB when it changes, at most this often (default 60 s). */
  readonly news2IntervalMs?: number;
  /**
   * How long start() waits for the broker before serving HTTP anyway (default 5 s). The dashboard
   * still shows the restored open alerts; MQTT keeps reconnecting in the background and /health
   * says `degraded` until it is up (docs/alerts.md "Starting without the broker").
   */
  readonly mqttConnectWaitMs?: number;
  /** HTTP bounds on slow clients (alerts/http/app.ts HTTP_TIMEOUTS; tests shorten them). */
  readonly httpTimeouts?: { readonly requestMs: number; readonly idleMs: number };
  /** HTTPS instead of HTTP on config.httpPort (main.ts reads CAREWATCH_ALERTS_TLS_CERT_FILE/KEY_FILE). */
  readonly https?: ServerTls | undefined;
  /** CA of the broker's certificate for an mqtts:// or wss:// config.mqttUrl (CAREWATCH_MQTT_CA_FILE). */
  readonly mqttCa?: Buffer | undefined;
  /** Issue 15: notification channels and routing (validated by main.ts); absent = no notifications. */
  readonly notify?: NotifyConfig;
  /** Jitter source of the notification back-off (tests). */
  readonly notifyRandom?: () => number;
}

export interface Alerts {
  start(): Promise<void>;
  close(): Promise<void>;
  readonly app: FastifyInstance;
  readonly port: number;
  readonly lifecycle: Lifecycle;
  readonly engine: Engine;
  /** The personal baselines in force (issue 4); absent when disabled. */
  readonly baselines?: BaselineService;
  /** Test and maintenance mode (issue 11): points whose fire signals are recorded but raise no alarm. */
  readonly disablements: DisablementStore;
  /** Issue 15: on-call rosters in force, and the notifier (absent without a notify config). */
  readonly rosters: RosterStore;
  readonly notifier?: Notifier;
  /** Feeds one input through the rules into the lifecycle (what MQTT messages and care actions do). */
  handleInput(input: RuleInput): void;
  /** Everything sent to InfluxDB so far is acknowledged. */
  drained(): Promise<void>;
  stats(): Record<string, unknown>;
}

interface Snapshot {
  readonly version: 1;
  readonly savedAt: number;
  readonly rules: RuleStates;
  /** Open alerts too, as a fallback when InfluxDB is unreachable at start. */
  readonly open: StoredAlert[];
  /** Conditions held after a manual resolve (lifecycle REARM_AFTER_MS); re-armed by restore. */
  readonly held?: HeldCondition[];
  /** Open incidents (issue 11), the same fallback as `open`. */
  readonly incidents?: StoredIncident[];
  /** Partitioned mode, per home: the conditions a disablement holds back (disablements/store.ts `heldOf`). */
  readonly disablementHeld?: Array<{ key: string } & HeldSignal>;
}

export function createAlerts(deps: AlertsDeps): Alerts {
  const { config, registry } = deps;
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger.child({ component: 'alerts' });
  if (deps.production === true && config.tokenSecret === undefined) {
    throw new Error('CAREWATCH_TOKEN_SECRET is required in production mode (at least 32 characters)');
  }
  const stateDir = resolve(config.stateDir);
  const snapshotPath = join(stateDir, SNAPSHOT_FILE);
  // Issue 14 (docs/scaling.md "Services partitioned by home"): the homes this instance owns (undefined: all of them). The
  // rules, the MQTT subscriptions, the baselines and the restore see only these; people of any home
  // still log in here (the full registry), and reach their home's alerts through the socket cluster.
  const homes = parseHomes(config.homes, registry);
  // Two partitioned instances must not share the publisher's and the live feed's client ids
  // (each would take the other's connection over [MQTT-3.1.4-2]).
  if (homes !== undefined && config.instance === undefined) throw new Error('CAREWATCH_INSTANCE is required with CAREWATCH_HOMES: a name per alerts instance');
  const ownRegistry = homes === undefined ? registry : restrictRegistry(registry, homes);
  const owns = (homeId: string): boolean => homes === undefined || homes.includes(homeId);
  const homeStateDir = resolve(config.homeStateDir ?? join(stateDir, 'homes'));
  // One adapter (common/influx/) for every writer and reader of this process; create-only schema:
  // ingest owns the retention periods.
  const influxDb = openInfluxDatabase({ url: config.influxUrl, database: config.influxDb });
  const influxReader = influxDb.reader;
  const baselines = deps.baselines === false ? undefined : createBaselineService({ influx: influxReader, registry: ownRegistry, clock, logger, ...deps.baselines });
  const news2History: News2History = createNews2History({
    influx: influxDb,
    journalPath: join(stateDir, CARE_JOURNAL_FILE),
    clock,
    logger,
    ...(deps.news2IntervalMs !== undefined ? { minIntervalMs: deps.news2IntervalMs } : {}),
  });
  // Turns and bed changes for the monthly statistics (docs/statistics.md), from the care rules' facts.
  const turnHistory: TurnHistory = createTurnHistory({
    influx: influxDb,
    journalPath: join(stateDir, TURN_JOURNAL_FILE),
    clock,
    logger,
  });
  // The dashboard's NEWS2 and next-turn per resident, from the same facts.
  const careView = createCareStateView();
  const factSinks: ReadonlyArray<readonly [string, (facts: readonly Fact[]) => void]> = [
    ['news2History', (f) => news2History.onFacts(f)],
    ['turnHistory', (f) => turnHistory.onFacts(f)],
    ['careView', (f) => careView.onFacts(f)],
  ];
  let factSinkFailures = 0;
  /** What the rules found goes to each consumer; like the alert sinks, a failing one cannot stop the others. */
  function routeFacts(facts: readonly Fact[]): void {
    for (const [name, sink] of factSinks) {
      try {
        sink(facts);
      } catch (err) {
        factSinkFailures++;
        logger.error({ err, sink: name, code: 'ALERTS_FACT_SINK_FAILED' }, 'a fact consumer failed');
      }
    }
  }
  // Partitioned: one engine per owned home, each saved to its own file, so a home's rule state moves
  // with the home (alerts/partition.ts).
  const homeEngines: HomeEngines | undefined =
    homes === undefined ? undefined : createHomeEngines({ homes, registry, rulesFor: () => withCareContext(deps.rules, () => baselines?.current()), logger, onFacts: routeFacts });
  const engine: Engine =
    homeEngines ??
    createEngine({
      rules: withCareContext(deps.rules, () => baselines?.current()),
      registry,
      logger,
      onFacts: routeFacts,
    });
  // The journal keeps alert changes until a snapshot holds them (requestCover below), so a restart
  // with InfluxDB down still finds every open alarm.
  const store: AlertStore = createAlertStore({ influxUrl: config.influxUrl, database: config.influxDb, influx: influxDb, journalPath: join(stateDir, JOURNAL_FILE), clock, logger, cover: { request: () => requestCover() } });
  let hub: SocketHub | undefined;
  let cluster: SocketCluster | undefined;
  /** Issue 14, partitioned mode with Redis: are all homes of the registry owned exactly once (alerts/home-coverage.ts)? */
  let coverage: Coverage | undefined;
  let mqttAdapter: MqttAdapter | undefined;
  /** Set when the broker refused our login (retrying will not help): shown in /health. */
  let mqttFailure: string | undefined;
  let inputs = 0;

  function onChange(change: AlertChange): void {
    // Each sink is separate: a failing one cannot stop the others.
    try {
      store.record(change);
    } catch (err) {
      logger.error({ err, code: 'ALERTS_PERSIST_FAILED', alertId: change.alert.id }, 'could not journal an alert change');
    }
    // An inhibited alert is recorded but not notified: its incident carries it (issue 11).
    if (!change.changed || !change.notify) return;
    try {
      hub?.publish(change.alert);
    } catch (err) {
      logger.error({ err, code: 'ALERTS_SOCKET_FAILED', alertId: change.alert.id }, 'socket.io emit failed');
    }
    mqttAdapter?.publishAlert(change.alert);
  }

  function onIncidentChange(change: IncidentChange): void {
    try {
      store.recordIncident(change);
    } catch (err) {
      logger.error({ err, code: 'ALERTS_PERSIST_FAILED', incidentId: change.incident.id }, 'could not journal an incident change');
    }
    // Issue 15: the notifier also reads audit-only entries (a re-alert is one).
    try {
      notifier?.onIncidentChange(change);
    } catch (err) {
      logger.error({ err, code: 'ALERTS_NOTIFY_FAILED', incidentId: change.incident.id }, 'notifier failed');
    }
    if (!change.changed) return;
    try {
      hub?.publishIncident(change.incident);
    } catch (err) {
      logger.error({ err, code: 'ALERTS_SOCKET_FAILED', incidentId: change.incident.id }, 'socket.io incident emit failed');
    }
    mqttAdapter?.publishIncident(change.incident);
  }

  const lifecycle = createLifecycle({
    clock,
    registry,
    onChange,
    onIncidentChange,
    logger,
    // A held condition is written at once, not at the next rule snapshot (which waits for dirty rule state).
    onHeldChange: () => {
      if (started && !closed) void saveSnapshot();
    },
    ...(deps.policy ? { policy: deps.policy } : {}),
  });

  // Issue 11: signals of a point in test or disabled mode are held back here, before they become
  // alerts, so no alert, socket.io or MQTT message follows from them (alerts/disablements/core.ts).
  const disablements: DisablementStore = createDisablementStore({
    registry,
    clock,
    logger,
    statePath: join(stateDir, DISABLEMENTS_FILE),
    history: { influx: influxDb, influxUrl: config.influxUrl, database: config.influxDb, journalPath: join(stateDir, DISABLEMENT_JOURNAL_FILE) },
    onChange: (d) => hub?.publishDisablements(d.homeId),
    // A condition still active when its disablement ends is raised then (core.ts releaseHeld).
    onRelease: (signals) => lifecycle.applySignals(signals),
    ...(homes !== undefined ? { owns } : {}),
  });
  // Issue 15: on-call rosters (registry, edited by directors) and the notifier on the incident sink.
  const rosters: RosterStore = createRosterStore({ registry, stateDir, clock, logger });
  // Issue 15: SMS / voice delivery receipts map the gateway's message id back to the incident's audit.
  const receiptBook: ReceiptBook | undefined =
    deps.notify === undefined
      ? undefined
      : createReceiptBook({
          config: deps.notify,
          clock,
          logger,
          audit: (id, facts) => {
            if (lifecycle.incident(id) === undefined) return false;
            lifecycle.noteIncidentNotification(id, 'notify_receipt', facts);
            return true;
          },
        });
  const notifyChannels: ReadonlyMap<string, NotificationChannel> | undefined =
    deps.notify === undefined ? undefined : buildChannels(deps.notify, clock, deps.notifyRandom, { onMessageId: (channelId, msg, id) => receiptBook?.remember(channelId, msg, id) });
  // Issue 15: each channel's run of failed attempts, for /health (a channel down for minutes reaches nobody).
  const channelHealth = createChannelHealth();
  const notifier: Notifier | undefined =
    deps.notify === undefined
      ? undefined
      : createNotifier({
          config: deps.notify,
          registry,
          rosters,
          clock,
          logger,
          audit: (id, action, facts) => {
            if (facts.channel !== undefined && (facts.status === 'delivered' || facts.status === 'retrying' || facts.status === 'failed')) channelHealth.note(facts.channel, facts.status === 'delivered', clock.now(), facts.reason);
            lifecycle.noteIncidentNotification(id, action, facts);
          },
          // Issue 15: open incidents resume their paging at start (restart, home taken over).
          openIncidents: () => lifecycle.openIncidents(),
          incidentAudit: (id) => lifecycle.incidentAudit(id),
          ...(deps.notifyRandom !== undefined ? { random: deps.notifyRandom } : {}),
          ...(notifyChannels !== undefined ? { channels: notifyChannels } : {}),
        });
  const applySignals = (signals: readonly Signal[]): void => lifecycle.applySignals(disablements.filter(signals));

  function handleInput(input: RuleInput): void {
    inputs++;
    const signals = engine.evaluate(input);
    if (!('receivedTs' in input)) {
      applySignals(signals);
      return;
    }
    // A signal raised by this very message gets the broker's and our receive times (GB 50440
    // timing), whichever rule raised it: fire rules set receivedTs themselves, care rules do not.
    const { brokerTs, receivedTs } = input;
    applySignals(
      signals.map((s) =>
        s.sourceTs !== input.ts || (s.receivedTs !== undefined && (s.brokerTs !== undefined || brokerTs === undefined))
          ? s
          : { ...s, receivedTs: s.receivedTs ?? receivedTs, ...(brokerTs !== undefined ? { brokerTs: s.brokerTs ?? brokerTs } : {}) },
      ),
    );
  }

  function onCareAction(a: CareActionInput): void {
    store.recordCareAction(a);
    handleInput({
      type: 'care_action',
      now: clock.now(),
      residentId: a.residentId,
      homeId: a.homeId,
      action: a.action,
      by: a.by,
      ts: a.ts,
      ...(a.observation !== undefined ? { observation: a.observation } : {}),
    });
  }

  // With the registry: a deleted user, or one whose role or home changed, is cut off at once.
  const tokens = createTokenService(config.tokenSecret, config.tokenTtlS, registry);
  const signOut = createSignOut({ tokens, now: () => clock.now(), logger, path: join(stateDir, SIGNED_OUT_FILE) });
  // A token signed out here or on another web node: its pages here are disconnected; one signed out
  // here is told to the other nodes (a peer's is not passed on: every node hears the original).
  signOut.onEnded(({ revocation, token }, origin) => {
    hub?.endSession(revocation.id);
    if (origin === 'here' && token !== undefined) cluster?.signOutElsewhere(token, revocation, clock.now());
  });
  // Read at scrape time from what the process keeps (alerts/metrics.ts).
  const metrics = createAlertsMetrics({
    openAlerts: () => lifecycle.open(),
    openIncidents: () => lifecycle.openIncidents(),
    mqtt: () => mqttAdapter?.stats(),
    journal: () => store.stats(),
    socketClients: () => hub?.connections() ?? 0,
    inputs: () => inputs,
    ruleFailures: () => Object.values(engine.failures()).reduce((a, b) => a + b, 0),
    disablementsInForce: () => disablements.stats().inForce,
    snapshotSeconds: () => lastSaveMs / 1000,
  });
  // Issue 14: REST reads and actions of homes another instance owns go to it over the socket
  // cluster (alerts/http/peer-rest.ts); the cluster itself is created in start(). Partitioned
  // without Redis there is nobody to ask: lists name the other homes as missing, actions on an id
  // this node does not hold get the local not-found answer.
  const peers: RestPeers | undefined =
    homes === undefined
      ? undefined
      : {
          owns,
          homes,
          lists: (token) => cluster?.lists(token) ?? Promise.resolve({ homes: [], alerts: [], incidents: [], disablements: [], complete: false }),
          act: (token, action) => cluster?.act(token, action) ?? Promise.resolve(undefined),
        };
  // Issue 15: attempts, receipts and rate-limit queues of the notification channels.
  registerNotifyMetrics(metrics, {
    channels: () => new Map([...(notifyChannels ?? new Map<string, NotificationChannel>())].flatMap(([id, ch]) => (ch.stats !== undefined ? [[id, ch.stats()] as const] : []))),
    receipts: () => receiptBook?.stats(),
  });
  // Session 26: a page that failed for good is sent again in rounds (notify/notifier.ts); a device clock the rules move (device-clock.ts).
  counterFrom({ registry: metrics, name: 'notify_redeliveries_total', help: 'Notification pages whose delivery attempts all failed and that were sent again in a later round (1 min doubling to 5 min apart, until delivered or answered), since start' }, () => notifier?.stats().redeliveries ?? 0);
  gaugeFrom({ registry: metrics, name: 'alerts_device_clocks_corrected', help: "Devices whose clock is steadily behind their receipt by more than 5 s, whose times the rules move by that offset now (docs/rules.md \"Device clocks\")" }, () => engine.deviceClocks().corrected);
  // Issue 14: 0 when every home is owned (or not partitioned); alert on > 0 (docs/scaling.md "Home coverage").
  gaugeFrom({ registry: metrics, name: 'alerts_homes_unowned', help: 'Homes of the registry owned by no alerts instance beyond the grace period (nobody evaluates their alarms)' }, () => coverage?.report().unowned.length ?? 0);
  gaugeFrom({ registry: metrics, name: 'alerts_homes_owned_twice', help: 'Homes owned by two or more alerts instances beyond the grace period' }, () => coverage?.report().ownedTwice.length ?? 0);
  const app = buildApp({
    ...(deps.httpTimeouts !== undefined ? { httpTimeouts: deps.httpTimeouts } : {}),
    peers,
    https: deps.https,
    metrics,
    registry,
    lifecycle,
    tokens,
    signOut,
    clock,
    logger,
    production: deps.production === true,
    metricsAccess: { token: config.metricsToken, production: deps.production === true },
    dashboardDir: resolve(config.dashboardDir),
    store,
    onCareAction,
    health: () => {
      const journal = store.stats();
      const mqttStats = mqttAdapter?.stats();
      const mqttUp = mqttStats?.connected ?? false;
      const disabled = disablements.stats();
      const cov = coverage?.report();
      const failingChannels = channelHealth.failing(clock.now());
      const problems = [
        ...journal.problems,
        ...disabled.problems,
        ...(deps.mqtt !== false && !mqttUp ? [mqttFailure ?? 'ALERTS_MQTT_DISCONNECTED'] : []),
        // Issue 14: without Redis, this node's alerts reach only the pages connected to it.
        ...(cluster !== undefined && !cluster.connected() ? ['ALERTS_REDIS_DISCONNECTED'] : []),
        ...(cov !== undefined && cov.unowned.length > 0 ? ['ALERTS_HOME_UNOWNED'] : []),
        ...(cov !== undefined && cov.ownedTwice.length > 0 ? ['ALERTS_HOME_OWNED_TWICE'] : []),
        ...(failingChannels.length > 0 ? ['ALERTS_NOTIFY_CHANNEL_FAILING'] : []),
        ...(snapshotFailing ? ['ALERTS_SNAPSHOT_FAILED'] : []),
      ];
      // Issue 12: rejected device messages per code (the log is rate-limited, these counts are exact).
      const deviceMessages = { received: mqttStats?.received ?? 0, rejected: mqttStats?.rejected ?? {}, rejectedTotal: mqttStats?.rejectedTotal ?? 0, clockSkew: mqttStats?.clockSkew ?? {}, clocksCorrected: engine.deviceClocks().corrected };
      return { mqtt: mqttUp, journalPending: journal.pending, journal, disablementsInForce: disabled.inForce, disabledPoints: disabled.disabledPoints, deviceMessages, ...(cov !== undefined ? { coverage: cov } : {}), ...(notifier !== undefined ? { notify: { failingChannels } } : {}), problems };
    },
    influx: influxReader,
    residentCareState: careView.residentCareState,
  });

  /** The verified actor of a request to the routes registered here, or undefined (each answers 401 itself). */
  const actorOf = (req: FastifyRequest): Actor | undefined => {
    const token = bearerToken(req.headers.authorization);
    return token === undefined ? undefined : tokens.verify(token, clock.now());
  };

  // Issue 4 per-resident history; registered here rather than in http/app.ts (owned by others).
  void app.register(residentRoutes, {
    registry,
    influx: influxReader,
    now: () => clock.now(),
    openAlerts: () => lifecycle.open(),
    actorOf,
  });

  // Issue 11 test and maintenance mode; registered here rather than in http/app.ts (shared).
  void app.register(disablementRoutes, {
    store: disablements,
    peers,
    registry,
    actorOf,
  });

  void app.register(rosterRoutes, {
    store: rosters,
    ...(peers !== undefined ? { owns } : {}),
    actorOf,
  });

  // Issue 15: the gateways' delivery receipts (signed per channel, no user token).
  if (receiptBook !== undefined) void app.register(receiptRoutes, { book: receiptBook });

  let tickTimer: ClockTimer | undefined;
  let snapshotTimer: ClockTimer | undefined;
  let saving: Promise<void> = Promise.resolve();
  let started = false;
  let closed = false;

  /**
   * A save that failed (a full disk) is tried again whole at the next period: its cut had cleared the
   * dirty marks of what it held (in partitioned mode the next save would otherwise rewrite only the
   * homes changed since, and the journal, which empties only on a full save's word, would keep
   * growing). Reported on /health meanwhile (ALERTS_SNAPSHOT_FAILED; only a log line before session
   * 21); the first failure of a run logged at error level, the repeats at most 3 lines a minute (a
   * save is tried every few seconds).
   */
  let snapshotFailing = false;
  const snapshotFailures = createRejectionLog<'ALERTS_SNAPSHOT_FAILED'>(logger, () => clock.now(), 3, 60_000, 'could not save the state files; tried again at the next period');
  function snapshotFailed(err: unknown, what: string): void {
    // The first failure of a run at error level, with its stack; the repeats rate-limited.
    if (!snapshotFailing) logger.error({ err, code: 'ALERTS_SNAPSHOT_FAILED' }, `could not save ${what}; tried again at the next period`);
    else snapshotFailures.record('ALERTS_SNAPSHOT_FAILED', what, `${(err as NodeJS.ErrnoException | undefined)?.code ?? ''} ${err instanceof Error ? err.message : String(err)}`.trim());
    snapshotFailing = true;
    coverWanted = true;
  }
  function savedSnapshot(): void {
    snapshotFailing = false;
  }

  /** One file per owned home (partitioned mode): its rule states, open alerts, held conditions, incidents. */
  function saveHomes(engines: HomeEngines, which: readonly string[]): Promise<void> {
    // Only a save of every owned home, after the restore, holds every open alert (the journal's cover).
    const mark = coverable && which.length === engines.homes.length ? store.coverMark() : undefined;
    const open = lifecycle.open().flatMap((a) => lifecycle.stored(a.id) ?? []);
    const held = lifecycle.held();
    const incidents = lifecycle.openIncidents().flatMap((i) => lifecycle.storedIncident(i.id) ?? []);
    // Each home's cut now (consistent), its text later in slices (inTurns).
    const files = which.map((h) => ({
      path: homeStatePath(homeStateDir, h),
      parts: [
        `{"version":1,"home":${JSON.stringify(h)},"owner":${JSON.stringify(config.instance ?? null)},"savedAt":${clock.now()},"rules":`,
        ...engines.snapshotHomeCut(h),
        `,"open":${JSON.stringify(open.filter((s) => s.alert.homeId === h))},"held":${JSON.stringify(held.filter((c) => c.signal.homeId === h))},"incidents":${JSON.stringify(incidents.filter((s) => s.incident.homeId === h))},"disablementHeld":${JSON.stringify(disablements.heldOf(h))}}`,
      ],
    }));
    saving = saving
      // allSettled: a failing home must not end this save while the others still write (the next
      // save would start beside them).
      .then(async () => {
        const failed = (await Promise.allSettled(files.map((f) => writeTextAtomic(f.path, inTurns(f.parts))))).find((r) => r.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
      })
      .then(() => {
        if (mark !== undefined) store.covered(mark);
      })
      .then(savedSnapshot, (err: unknown) => snapshotFailed(err, 'a home state file'));
    return saving;
  }

  /** Every owned home's file, merged into the one-instance snapshot's shape (rules already restored per home); undefined when there was none. */
  async function loadHomes(engines: HomeEngines): Promise<Snapshot | undefined> {
    let read = 0;
    const open: StoredAlert[] = [];
    const held: HeldCondition[] = [];
    const incidents: StoredIncident[] = [];
    for (const h of engines.homes) {
      const path = homeStatePath(homeStateDir, h);
      try {
        const snap = (await readJson(path)) as (Snapshot & { home?: string }) | undefined;
        if (snap === undefined) continue;
        if (snap.version !== 1 || snap.home !== h || typeof snap.rules !== 'object') throw new Error('unknown home state format');
        engines.restoreHome(h, snap.rules);
        read++;
        if (Array.isArray(snap.open)) open.push(...snap.open.filter((s) => s.alert.homeId === h));
        if (Array.isArray(snap.held)) held.push(...snap.held.filter((c) => c.signal.homeId === h));
        if (Array.isArray(snap.incidents)) incidents.push(...snap.incidents.filter((s) => s.incident.homeId === h));
        // Conditions a test-mode disablement held back when the home was saved (it may have moved here).
        if (Array.isArray(snap.disablementHeld)) disablements.adoptHeld(snap.disablementHeld.filter((c) => c.signal.homeId === h));
      } catch (err) {
        // As for the one-instance snapshot: a corrupt file costs that home's rule windows; its open
        // alerts and incidents still come from InfluxDB.
        logger.error({ err, code: 'ALERTS_SNAPSHOT_UNREADABLE', path, home: h }, 'ignoring a home state file');
      }
    }
    return read === 0 ? undefined : { version: 1, savedAt: clock.now(), rules: {}, open, held, incidents };
  }

  function saveSnapshot(which?: readonly string[]): Promise<void> {
    if (homeEngines !== undefined) return saveHomes(homeEngines, which ?? homeEngines.homes);
    // Built as text around the engine's cut: the rule states are the bulk. The cut is taken now (a
    // consistent state, cheap); its text is made and written one slice per turn (inTurns), so an
    // alarm message never waits behind the whole serialisation (issue 11, alerts/snapshot-text.ts).
    const mark = coverable ? store.coverMark() : undefined;
    const parts: CutPart[] = [
      `{"version":1,"savedAt":${clock.now()},"rules":`,
      ...engine.snapshotCut(),
      `,"open":${JSON.stringify(lifecycle.open().flatMap((a) => lifecycle.stored(a.id) ?? []))},"held":${JSON.stringify(lifecycle.held())},"incidents":${JSON.stringify(lifecycle.openIncidents().flatMap((i) => lifecycle.storedIncident(i.id) ?? []))}}`,
    ];
    saving = saving
      .then(() => writeTextAtomic(snapshotPath, inTurns(parts)))
      .then(() => {
        if (mark !== undefined) store.covered(mark);
      })
      .then(savedSnapshot, (err: unknown) => snapshotFailed(err, 'the rule-state snapshot'));
    return saving;
  }

  /**
   * The journal has sent every alert change to InfluxDB and keeps them only until a snapshot holds
   * them (journal-writer.ts `cover`): the next periodic save (scheduleSnapshot) is then a save of
   * every home even if no rule state changed. Not a save now: the changes are safe in the journal
   * meanwhile, and saves at every alert change under churn would run back to back, past the pacing
   * that keeps the snapshot from delaying alarms (alerts/snapshot-pace.ts).
   */
  let coverWanted = false;
  /** Set once the open alerts are restored: a save cut before that holds none of them and covers nothing. */
  let coverable = false;
  function requestCover(): void {
    coverWanted = true;
  }

  function scheduleTick(): void {
    tickTimer = clock.setTimeout(() => {
      tickTimer = undefined;
      if (closed) return;
      try {
        applySignals(engine.tick(clock.now()));
      } catch (err) {
        logger.error({ err, code: 'ALERTS_TICK_FAILED' }, 'tick failed');
      }
      scheduleTick();
    }, config.tickMs);
  }

  /** The last periodic save, from its cut to the file on disk (ms on the clock): paces the next. */
  let lastSaveMs = 0;
  function scheduleSnapshot(delayMs = SNAPSHOT_EVERY_MS): void {
    snapshotTimer = clock.setTimeout(() => {
      snapshotTimer = undefined;
      if (closed) return;
      const cover = coverWanted;
      if (!engine.dirty() && !cover) {
        scheduleSnapshot(snapshotDelayMs(lastSaveMs));
        return;
      }
      coverWanted = false;
      // The next save waits for this one to end, and longer the longer it took (alerts/snapshot-pace.ts).
      const began = clock.now();
      void saveSnapshot(cover ? homeEngines?.homes : homeEngines?.dirtyHomes()).then(() => {
        lastSaveMs = clock.now() - began;
        if (!closed) scheduleSnapshot(snapshotDelayMs(lastSaveMs));
      });
    }, delayMs);
  }

  async function loadSnapshot(): Promise<Snapshot | undefined> {
    try {
      const snap = (await readJson(snapshotPath)) as Snapshot | undefined;
      if (snap === undefined) return undefined;
      if (snap.version !== 1 || typeof snap.rules !== 'object') throw new Error('unknown snapshot format');
      return snap;
    } catch (err) {
      // A corrupt snapshot costs the rule windows, not the process: start them afresh.
      logger.error({ err, code: 'ALERTS_SNAPSHOT_UNREADABLE', path: snapshotPath }, 'ignoring the rule-state snapshot');
      return undefined;
    }
  }

  /**
   * A life-safety service must not sit dark because the broker is away: wait a bounded time, then
   * serve HTTP and socket.io (restored open alerts, acknowledgements) while the MQTT clients keep
   * reconnecting; /health reports `degraded` until connected. A refused login fails start (exit 1):
   * retrying a wrong password does not help.
   */
  async function connectMqtt(adapter: MqttAdapter): Promise<void> {
    const connecting = adapter.start();
    let waitTimer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waiting'>((r) => {
      waitTimer = setTimeout(() => r('waiting'), deps.mqttConnectWaitMs ?? 5000);
    });
    const first = await Promise.race([connecting.then(() => 'up' as const), waited]).finally(() => clearTimeout(waitTimer));
    if (first === 'up') return;
    logger.error({ code: 'ALERTS_MQTT_UNREACHABLE', url: config.mqttUrl, ...(config.signalsMqttUrl !== undefined ? { signalsUrl: config.signalsMqttUrl } : {}) }, 'MQTT broker unreachable; serving HTTP with the restored alerts and retrying in the background');
    connecting.then(
      () => logger.info('MQTT connected after start'),
      (err: unknown) => {
        mqttFailure = 'ALERTS_MQTT_REFUSED';
        logger.fatal({ err, code: 'ALERTS_MQTT_REFUSED' }, 'MQTT login refused; no device messages are received');
      },
    );
  }

  const self: Alerts = {
    ...(baselines !== undefined ? { baselines } : {}),
    app,
    lifecycle,
    engine,
    disablements,
    rosters,
    ...(notifier !== undefined ? { notifier } : {}),
    handleInput,
    get port() {
      const addr = app.server.address();
      return typeof addr === 'object' && addr !== null ? addr.port : 0;
    },
    async start() {
      if (started) throw new Error('alerts already started');
      started = true;
      const snap = homeEngines !== undefined ? await loadHomes(homeEngines) : await loadSnapshot();
      if (snap && homeEngines === undefined) engine.restore(snap.rules);
      // Facts only report changes: the view starts from what holds in the restored states. The
      // histories need no seed: restored rules report only what happens after the restart.
      careView.onFacts(engine.standingFacts());
      await store.start();
      await news2History.start();
      await turnHistory.start();
      // Learned from InfluxDB before the first input is evaluated; a failure leaves the defaults in force.
      await baselines?.start();
      let restored: { alerts: StoredAlert[]; audit: Awaited<ReturnType<AlertStore['loadOpen']>>['audit']; resolved: ReadonlyMap<string, number> } = { alerts: [], audit: [], resolved: new Map() };
      try {
        const loaded = await store.loadOpen(clock.now() - config.restoreDays * 86_400_000);
        // InfluxDB down: the journal's unsent changes still come back (an alarm raised and PUBACKed
        // just before a crash is only there until InfluxDB takes it).
        if (loaded.influxError !== undefined) logger.error({ err: loaded.influxError, code: 'ALERTS_RESTORE_FAILED' }, 'could not read open alerts from InfluxDB; using the journal and the local snapshot');
        restored = { alerts: loaded.alerts, audit: loaded.audit, resolved: loaded.resolved };
        // Only the owned homes' (another instance holds the rest).
        if (homes !== undefined) restored = { ...restored, alerts: restored.alerts.filter((s) => owns(s.alert.homeId)), audit: restored.audit.filter((e) => owns(e.homeId)) };
      } catch (err) {
        logger.error({ err, code: 'ALERTS_RESTORE_FAILED' }, 'could not read open alerts from InfluxDB; using the local snapshot');
      }
      const merged = newestOpen([...(snap?.open ?? []), ...restored.alerts], (s) => s.alert, restored.resolved);
      let restoredIncidents: { incidents: StoredIncident[]; audit: IncidentAuditEntry[]; resolved: ReadonlyMap<string, number> } = { incidents: [], audit: [], resolved: new Map() };
      try {
        const loaded = await store.loadOpenIncidents(clock.now() - config.restoreDays * 86_400_000);
        if (loaded.influxError !== undefined) logger.error({ err: loaded.influxError, code: 'ALERTS_RESTORE_FAILED' }, 'could not read open incidents from InfluxDB; using the journal and the local snapshot');
        restoredIncidents = { incidents: loaded.incidents, audit: loaded.audit, resolved: loaded.resolved };
        if (homes !== undefined) restoredIncidents = { ...restoredIncidents, incidents: restoredIncidents.incidents.filter((s) => owns(s.incident.homeId)), audit: restoredIncidents.audit.filter((e) => owns(e.homeId)) };
      } catch (err) {
        logger.error({ err, code: 'ALERTS_RESTORE_FAILED' }, 'could not read open incidents from InfluxDB; using the local snapshot');
      }
      const mergedIncidents = newestOpen([...(Array.isArray(snap?.incidents) ? snap.incidents : []), ...restoredIncidents.incidents], (s) => s.incident, restoredIncidents.resolved);
      lifecycle.restore(merged, restored.audit, Array.isArray(snap?.held) ? snap.held : [], { incidents: mergedIncidents, audit: restoredIncidents.audit });
      logger.info({ openAlerts: lifecycle.open().length, openIncidents: lifecycle.openIncidents().length, ruleStates: snap !== undefined }, 'alerts restored');
      // A rule failure open before the restart clears when its rule next succeeds: the engine starts
      // without knowing it failed (until session 23 such a trouble stayed open for good).
      for (const a of lifecycle.open()) {
        const failed = a.rule === 'rule_failure' ? ruleFailureOf(lifecycle.stored(a.id)?.key ?? '') : undefined;
        if (failed !== undefined) engine.resumeFailing(failed.ruleId, failed.homeId);
      }
      // From here a snapshot's cut holds the restored open alerts (the journal's replayed changes).
      coverable = true;
      // After the open alerts (a disablement that ended while we were down releases its held conditions into them), before any input.
      await disablements.start();
      await rosters.start();
      await signOut.start();
      await notifier?.start();
      if (config.redisUrl !== undefined) cluster = createSocketCluster({ redisUrl: config.redisUrl, logger });
      // What this node answers a peer's REST list request with: the homes it owns and what the user may see of them.
      cluster?.serveLists((actor) => ({
        homes: homes === undefined ? registry.site.homes.map((h) => h.id) : [...homes],
        alerts: lifecycle.open().filter((a) => canSeeAlert(actor, a)),
        incidents: lifecycle.openIncidents().filter((i) => canSeeHome(actor, i.homeId)),
        disablements: disablements.visibleTo(actor),
      }));
      if (config.redisUrl !== undefined && homes !== undefined && config.instance !== undefined) {
        coverage = createCoverage({ redisUrl: config.redisUrl, instance: config.instance, homes, registryHomes: registry.site.homes.map((h) => h.id), clock, logger, ...deps.coverage });
        await coverage.start();
      }
      hub = createSocketHub({ server: app.server, tokens, lifecycle, clock, logger, disablements: { store: disablements, registry, ...(homes !== undefined ? { owns } : {}) }, ...(cluster !== undefined ? { cluster } : {}), onPeerSignOut: (token) => void signOut.end(token, 'peer'), onSignedOutList: (list) => signOut.learn(list) });
      await app.listen({ host: config.httpHost, port: config.httpPort });
      if (deps.mqtt !== false) {
        mqttAdapter = createMqttAdapter({
          url: config.mqttUrl,
          ...(config.signalsMqttUrl !== undefined ? { signalsUrl: config.signalsMqttUrl } : {}),
          ca: deps.mqttCa,
          password: config.alertsPassword,
          registry: ownRegistry,
          clock,
          logger,
          onInput: handleInput,
          durable: () => store.synced(),
          ...(config.receiveStamp !== undefined ? { receiveStamp: config.receiveStamp } : {}),
          // Issue 14: one signals session per owned home (svc-alerts-home-<home>-signals); the publisher
          // and the live feed are this instance's (svc-alerts-<instance>, svc-alerts-<instance>-telemetry).
          ...(homes !== undefined ? { homes } : {}),
          ...(config.instance !== undefined ? { clientId: `${ALERTS_CLIENT_ID}-${config.instance}` } : {}),
        });
        await connectMqtt(mqttAdapter);
      }
      scheduleTick();
      scheduleSnapshot();
      logger.info({ port: self.port }, 'alerts started');
    },
    async close() {
      if (closed) return;
      closed = true;
      if (tickTimer) clock.clearTimeout(tickTimer);
      if (snapshotTimer) clock.clearTimeout(snapshotTimer);
      // Every step runs even if an earlier one throws, so no socket, timer or file is left open.
      const errors: unknown[] = [];
      const step = async (what: string, fn: () => unknown): Promise<void> => {
        try {
          await fn();
        } catch (err) {
          logger.error({ err, code: 'ALERTS_CLOSE_FAILED', step: what }, 'a close step failed');
          errors.push(err);
        }
      };
      await step('mqtt', () => mqttAdapter?.close());
      await step('notifier', () => notifier?.close());
      await step('notify receipts', () => receiptBook?.close());
      await step('rosters', () => rosters.close());
      // No expiry may release held conditions into a closing lifecycle.
      await step('disablements', () => disablements.close());
      await step('lifecycle', () => lifecycle.close());
      await step('socket.io', () => hub?.close());
      await step('coverage', () => coverage?.close());
      await step('socket-cluster', () => cluster?.close());
      await step('http', () => app.close());
      await step('sign-out', () => signOut.close());
      await step('snapshot', async () => {
        if (started) await saveSnapshot();
        await saving;
        snapshotFailures.close();
      });
      await step('baselines', () => baselines?.close());
      await step('news2History', () => news2History.close());
      await step('turnHistory', () => turnHistory.close());
      await step('store', () => store.close());
      await step('influx', () => influxDb.close());
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, `alerts close: ${errors.length} steps failed`);
    },
    drained: async () => {
      await store.drained();
      await news2History.drained();
      await turnHistory.drained();
      await disablements.drained();
    },
    stats: () => ({
      inputs,
      ruleFailures: engine.failures(),
      factSinkFailures: factSinkFailures + engine.factSinkFailures(),
      mqtt: mqttAdapter?.stats(),
      store: store.stats(),
      news2History: news2History.stats(),
      turnHistory: turnHistory.stats(),
      baselines: baselines?.stats(),
      sockets: hub?.connections() ?? 0,
      socketsClosedForBacklog: hub?.backlogClosed() ?? 0,
      pendingHandshakes: hub?.pendingHandshakes() ?? 0,
      disablements: disablements.stats(),
      rosters: rosters.stats(),
      notifier: notifier?.stats(),
      ...(homes !== undefined ? { homes, notOwnedInputs: homeEngines?.notOwned() ?? 0 } : {}),
      ...(cluster !== undefined ? { cluster: cluster.stats() } : {}),
    }),
  };
  return self;
}

/**
 * Restore: the newest version per id across InfluxDB, the journal and the local snapshot, less those
 * resolved at a later version (resolved after the snapshot was cut: its open copy is older).
 */
function newestOpen<T>(copies: readonly T[], message: (s: T) => { readonly id: string; readonly version: number }, resolved: ReadonlyMap<string, number>): T[] {
  const newest = new Map<string, T>();
  for (const s of copies) {
    const prior = newest.get(message(s).id);
    if (prior === undefined || message(prior).version < message(s).version) newest.set(message(s).id, s);
  }
  return [...newest.values()].filter((s) => (resolved.get(message(s).id) ?? -Infinity) <= message(s).version);
}

/** A snapshot cut's text, one slice per event-loop turn: messages waiting for the loop go between slices. */
async function* inTurns(parts: readonly CutPart[]): AsyncGenerator<string, void, void> {
  for (const chunk of sliceCut(parts)) {
    yield chunk;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Gives the rules a CareRuleContext: the engine's context plus the learned baselines, which the care
 * rules read and other rules ignore. The engine is unchanged: each rule is wrapped, keeping its other
 * fields (accepts, standingFacts).
 */
export function withCareContext(rules: readonly Rule[], baselinesOf: () => CareRuleContext['baselines']): Rule[] {
  let lastBase: RuleContext | undefined;
  let lastBaselines: CareRuleContext['baselines'];
  let careCtx: CareRuleContext | undefined;
  const contextFor = (ctx: RuleContext): CareRuleContext => {
    const b = baselinesOf();
    // One context object per (engine context, baselines) pair, not one per evaluation.
    if (careCtx === undefined || ctx !== lastBase || b !== lastBaselines) {
      lastBase = ctx;
      lastBaselines = b;
      careCtx = b === undefined ? ctx : { ...ctx, baselines: b };
    }
    return careCtx;
  };
  return rules.map((rule) => {
    const wrapped: Rule = Object.assign(Object.create(Object.getPrototypeOf(rule) as object) as Rule, rule, {
      evaluate: (input: RuleInput, state: unknown, ctx: RuleContext) => rule.evaluate(input, state, contextFor(ctx)),
    });
    if (rule.standingFacts !== undefined) {
      const standing = rule.standingFacts.bind(rule);
      wrapped.standingFacts = (state: unknown, ctx: RuleContext) => standing(state, contextFor(ctx));
    }
    return wrapped;
  });
}
