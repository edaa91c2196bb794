import { DashboardBuilder, DashboardCursorSync, QueryVariableBuilder, RowBuilder, VariableRefresh, VariableSort, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { DEVICE_KINDS, DEVICE_KIND_NAMES } from '../../../contract/device-kinds.ts';
import { DATASOURCE, InfluxAnnotationBuilder, InfluxQLTarget, influxql } from './influxql.ts';
import type { NumericMetric } from './schema.ts';

/**
 * The carewatch dashboards, as code (issue 13): the bureau's overview of every home, one per home
 * (fire sensors by room, device health, alerts), one per resident (vital signs, NEWS2, bed, turns),
 * and ingest health. `npm run grafana` renders them to dashboards/grafana/dashboards/*.json; the
 * rendered files are committed and a test fails when they differ from what this code renders.
 * Thresholds named in titles come from docs/rules.md, which cites their standards.
 */

const FIRE_KINDS = DEVICE_KIND_NAMES.filter((k) => DEVICE_KINDS[k].category === 'fire');
const HOME = { tag: 'home', variable: 'home' } as const;
const RESIDENT = { tag: 'resident', variable: 'resident' } as const;

function homeVariable(): QueryVariableBuilder {
  return new QueryVariableBuilder('home')
    .label('Home 养老院')
    .datasource(DATASOURCE)
    .query('SHOW TAG VALUES FROM "telemetry" WITH KEY = "home"')
    .refresh(VariableRefresh.OnDashboardLoad)
    .sort(VariableSort.AlphabeticalAsc);
}

function residentVariable(): QueryVariableBuilder {
  return new QueryVariableBuilder('resident')
    .label('Resident 长者')
    .datasource(DATASOURCE)
    .query('SHOW TAG VALUES FROM "telemetry" WITH KEY = "resident" WHERE "home" =~ /^$home$/')
    .refresh(VariableRefresh.OnDashboardLoad)
    .sort(VariableSort.AlphabeticalAsc);
}

/** Alert raises as annotations on every time series (fire in red, care in orange, device in blue). */
function alertAnnotations(category: 'fire' | 'care' | 'device', color: string, perHome: boolean): InfluxAnnotationBuilder {
  const query = influxql({
    from: 'alert',
    fields: [{ field: 'id' }, { field: 'version' }],
    where: [...(perHome ? [HOME] : []), { tag: 'category', equals: category }, { tag: 'state', equals: 'raised' }, { field: 'version', equals: 1 }],
  });
  // The rule name is the tag: text and tags columns name result columns (`rule` and `home` are tags, returned with GROUP BY).
  return new InfluxAnnotationBuilder(`${category} alerts raised`, `${query} GROUP BY "rule", "home"`, 'rule', 'home', color);
}

function series(title: string, query: string, unit?: string, alias = '$tag_room'): TimeseriesBuilder {
  const p = new TimeseriesBuilder().title(title).datasource(DATASOURCE).withTarget(new InfluxQLTarget(query).alias(alias)).height(8).span(12);
  return unit === undefined ? p : p.unit(unit);
}

/** A long-range panel: per-minute aggregates (two years), not raw readings (30 days), over the last 30 days. */
function longRange(title: string, query: string, unit: string | undefined, alias: string): TimeseriesBuilder {
  return series(`${title} · 30 days (per-minute aggregates)`, query, unit, alias).timeFrom('30d').interval('1h');
}

function metricByTag(metric: NumericMetric, aggregate: 'mean' | 'min' | 'max', kinds: readonly string[] | undefined, groupBy: 'room' | 'device' | 'resident' | 'home', extra: 'home' | 'resident'): string {
  return influxql({
    from: 'telemetry',
    fields: [{ field: metric, aggregate }],
    where: [HOME, ...(extra === 'resident' ? [RESIDENT] : []), ...(kinds === undefined ? [] : [{ tag: 'kind', oneOf: kinds } as const])],
    perInterval: true,
    groupBy: [groupBy],
    fill: 'none',
  });
}

export function bureauOverview(): Dashboard {
  return new DashboardBuilder('carewatch · 民政局总览 Bureau overview')
    .uid('carewatch-bureau')
    .tags(['carewatch', 'bureau'])
    .refresh('30s')
    .time({ from: 'now-24h', to: 'now' })
    .tooltip(DashboardCursorSync.Crosshair)
    .annotation(alertAnnotations('fire', 'red', false))
    .withPanel(
      new StatBuilder()
        .title('Fire alerts raised, by home 火警')
        .datasource(DATASOURCE)
        .withTarget(new InfluxQLTarget(influxql({ from: 'alert', fields: [{ field: 'version', aggregate: 'count' }], where: [{ tag: 'category', equals: 'fire' }, { tag: 'state', equals: 'raised' }], groupBy: ['home'] })).alias('$tag_home'))
        .height(6)
        .span(12),
    )
    .withPanel(
      new StatBuilder()
        .title('Escalations to the bureau, by home 升级')
        .datasource(DATASOURCE)
        .withTarget(new InfluxQLTarget(influxql({ from: 'alert_audit', fields: [{ field: 'seq', aggregate: 'count' }], where: [{ tag: 'action', equals: 'escalated' }], groupBy: ['home'] })).alias('$tag_home'))
        .height(6)
        .span(12),
    )
    .withPanel(series('Alerts raised per interval, by home', influxql({ from: 'alert', fields: [{ field: 'version', aggregate: 'count' }], where: [{ tag: 'state', equals: 'raised' }], perInterval: true, groupBy: ['home'], fill: '0' }), undefined, '$tag_home'))
    .withPanel(series('Devices going offline, by home 设备离线', influxql({ from: 'status', fields: [{ field: 'online', aggregate: 'count' }], where: [{ field: 'online', equals: false }], perInterval: true, groupBy: ['home'], fill: '0' }), undefined, '$tag_home'))
    .withPanel(series('Readings stored per interval, by home', influxql({ from: 'telemetry', fields: [{ field: 'seq', aggregate: 'count' }], perInterval: true, groupBy: ['home'], fill: '0' }), undefined, '$tag_home'))
    .withPanel(longRange('Readings stored, by home', influxql({ from: 'telemetry_1m', fields: [{ field: 'readings', aggregate: 'sum' }], perInterval: true, groupBy: ['home'], fill: '0' }), undefined, '$tag_home'))
    .withPanel(series('Fire-device events per interval, by home', influxql({ from: 'event', fields: [{ field: 'seq', aggregate: 'count' }], where: [{ tag: 'kind', oneOf: FIRE_KINDS }], perInterval: true, groupBy: ['home'], fill: '0' }), undefined, '$tag_home'))
    .build();
}

export function homeDashboard(): Dashboard {
  return new DashboardBuilder('carewatch · 养老院 Home: fire sensors, devices, alerts')
    .uid('carewatch-home')
    .tags(['carewatch', 'home'])
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .tooltip(DashboardCursorSync.Crosshair)
    .withVariable(homeVariable())
    .annotation(alertAnnotations('fire', 'red', true))
    .annotation(alertAnnotations('device', 'blue', true))
    .withRow(new RowBuilder('Fire sensors by room 火灾探测'))
    .withPanel(series('Smoke obscuration %/m (pre-alarm / alarm levels per docs/rules.md)', metricByTag('smoke_obscuration_pct_per_m', 'max', ['smoke_detector'], 'room', 'home'), 'percent'))
    .withPanel(series('Temperature °C (EN 54-5 A1R static response 54–65 °C)', metricByTag('temperature_c', 'max', ['smoke_detector', 'heat_detector'], 'room', 'home'), 'celsius'))
    .withPanel(series('Residual current mA (GB 14287: alarm 300–500 mA)', metricByTag('residual_current_ma', 'max', undefined, 'device', 'home'), undefined, '$tag_device'))
    .withPanel(series('Combustible gas %LEL', metricByTag('gas_lel_pct', 'max', undefined, 'device', 'home'), undefined, '$tag_device'))
    .withPanel(series('Fire-water pressure MPa (supervisory below 0.15 MPa)', metricByTag('water_pressure_mpa', 'min', undefined, 'device', 'home'), undefined, '$tag_device'))
    .withPanel(
      longRange(
        'Highest temperature °C by room',
        influxql({ from: 'telemetry_1m', fields: [{ field: 'max_temperature_c', aggregate: 'max' }], where: [HOME, { tag: 'kind', oneOf: ['smoke_detector', 'heat_detector'] }], perInterval: true, groupBy: ['room'], fill: 'none' }),
        'celsius',
        '$tag_room',
      ),
    )
    .withPanel(longRange('Lowest battery % by device', influxql({ from: 'telemetry_1m', fields: [{ field: 'min_battery_pct', aggregate: 'min' }], where: [HOME], perInterval: true, groupBy: ['device'], fill: 'none' }), 'percent', '$tag_device'))
    .withRow(new RowBuilder('Device health 设备状态'))
    .withPanel(series('Battery % (lowest per device)', metricByTag('battery_pct', 'min', undefined, 'device', 'home'), 'percent', '$tag_device'))
    .withPanel(series('Radio signal dBm (weakest per device)', metricByTag('rssi_dbm', 'min', undefined, 'device', 'home'), undefined, '$tag_device'))
    .withPanel(series('Fault, tamper and self-test events', influxql({ from: 'event', fields: [{ field: 'seq', aggregate: 'count' }], where: [HOME, { tag: 'type', oneOf: ['fault', 'tamper', 'self_test'] }], perInterval: true, groupBy: ['type'], fill: '0' }), undefined, '$tag_type'))
    .withPanel(
      new TableBuilder()
        .title('Device online status (last report)')
        .datasource(DATASOURCE)
        .withTarget(new InfluxQLTarget(influxql({ from: 'status', fields: [{ field: 'online', aggregate: 'last' }], where: [HOME], groupBy: ['device', 'kind'] })).table())
        .height(8)
        .span(12),
    )
    .withRow(new RowBuilder('Alerts 报警'))
    .withPanel(series('Alert changes by category', influxql({ from: 'alert', fields: [{ field: 'version', aggregate: 'count' }], where: [HOME], perInterval: true, groupBy: ['category'], fill: '0' }), undefined, '$tag_category'))
    .withPanel(series('Alert handling steps (acknowledged, confirmed, escalated, resolved)', influxql({ from: 'alert_audit', fields: [{ field: 'seq', aggregate: 'count' }], where: [HOME], perInterval: true, groupBy: ['action'], fill: '0' }), undefined, '$tag_action'))
    .withPanel(
      new TableBuilder()
        .title('Latest alert changes')
        .datasource(DATASOURCE)
        .withTarget(new InfluxQLTarget(influxql({ from: 'alert', fields: [{ field: 'id' }, { field: 'version' }], where: [HOME], groupBy: ['rule', 'state', 'category'], newestFirst: true, limit: 50 })).table())
        .height(8)
        .span(24),
    )
    .build();
}

export function residentDashboard(): Dashboard {
  return new DashboardBuilder('carewatch · 长者 Resident: vital signs, NEWS2, bed, turns')
    .uid('carewatch-resident')
    .tags(['carewatch', 'care'])
    .refresh('30s')
    .time({ from: 'now-12h', to: 'now' })
    .tooltip(DashboardCursorSync.Crosshair)
    .withVariable(homeVariable())
    .withVariable(residentVariable())
    .annotation(alertAnnotations('care', 'orange', true))
    .withRow(new RowBuilder('Vital signs 生命体征'))
    .withPanel(series('Heart rate bpm (NEWS2 pulse bands 40/50/90/110/130)', metricByTag('heart_rate_bpm', 'mean', ['vital_signs_monitor'], 'resident', 'resident'), undefined, '$tag_resident'))
    .withPanel(series('SpO2 % (NEWS2 Scale 1 bands 91/93/95)', metricByTag('spo2_pct', 'min', undefined, 'resident', 'resident'), 'percent', '$tag_resident'))
    .withPanel(series('Respiration rate /min (NEWS2 bands 8/11/20/24)', metricByTag('resp_rate_bpm', 'mean', ['vital_signs_monitor'], 'resident', 'resident'), undefined, '$tag_resident'))
    .withPanel(series('Body temperature °C (NEWS2 bands 35.0/36.0/38.0/39.0)', metricByTag('body_temp_c', 'mean', undefined, 'resident', 'resident'), 'celsius', '$tag_resident'))
    .withPanel(series('Systolic blood pressure mmHg (NEWS2 bands 90/100/110/219)', metricByTag('systolic_bp_mmhg', 'mean', undefined, 'resident', 'resident'), undefined, '$tag_resident'))
    .withPanel(longRange('Heart rate bpm (mean)', influxql({ from: 'telemetry_1m', fields: [{ field: 'mean_heart_rate_bpm', aggregate: 'mean' }], where: [HOME, RESIDENT, { tag: 'kind', equals: 'vital_signs_monitor' }], perInterval: true, groupBy: ['resident'], fill: 'none' }), undefined, '$tag_resident'))
    .withPanel(longRange('SpO2 % (lowest)', influxql({ from: 'telemetry_1m', fields: [{ field: 'min_spo2_pct', aggregate: 'min' }], where: [HOME, RESIDENT], perInterval: true, groupBy: ['resident'], fill: 'none' }), 'percent', '$tag_resident'))
    .withPanel(series('NEWS2 aggregate score (RCP 2017: 5–6 urgent, ≥ 7 emergency)', influxql({ from: 'news2', fields: [{ field: 'aggregate', aggregate: 'max' }], where: [HOME, RESIDENT], perInterval: true, groupBy: ['resident'], fill: 'previous' }), undefined, '$tag_resident'))
    .withRow(new RowBuilder('Bed, turns and continence 卧床护理'))
    .withPanel(series('Movement on the bed sensor', metricByTag('movement_index', 'mean', undefined, 'resident', 'resident'), undefined, '$tag_resident'))
    .withPanel(series('In bed (1) / out of bed (0)', influxql({ from: 'bed_presence', fields: [{ field: 'in_bed', aggregate: 'last' }], where: [HOME, RESIDENT], perInterval: true, groupBy: ['resident'], fill: 'previous' }), undefined, '$tag_resident'))
    .withPanel(series('Turns recorded, by source (sensor / staff)', influxql({ from: 'turn', fields: [{ field: 'interval_min', aggregate: 'count' }], where: [HOME, RESIDENT], perInterval: true, groupBy: ['source'], fill: '0' }), undefined, '$tag_source'))
    .withPanel(series('Wetness %', metricByTag('wetness_pct', 'max', undefined, 'resident', 'resident'), 'percent', '$tag_resident'))
    .withPanel(series('Care actions recorded (turned, changed, checked, called doctor)', influxql({ from: 'care_action', fields: [{ field: 'by', aggregate: 'count' }], where: [HOME, RESIDENT], perInterval: true, groupBy: ['action'], fill: '0' }), undefined, '$tag_action'))
    .withPanel(series('Care alert changes, by rule', influxql({ from: 'alert', fields: [{ field: 'version', aggregate: 'count' }], where: [HOME, { tag: 'category', equals: 'care' }], perInterval: true, groupBy: ['rule'], fill: '0' }), undefined, '$tag_rule'))
    .build();
}

export function ingestHealth(): Dashboard {
  return new DashboardBuilder('carewatch · 数据接入 Ingest health')
    .uid('carewatch-ingest')
    .tags(['carewatch', 'operations'])
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .withPanel(series('Telemetry points written per interval, by home', influxql({ from: 'telemetry', fields: [{ field: 'seq', aggregate: 'count' }], perInterval: true, groupBy: ['home'], fill: '0' }), undefined, '$tag_home'))
    .withPanel(series('Rejected messages by code', influxql({ from: 'rejected', fields: [{ field: 'reason', aggregate: 'count' }], perInterval: true, groupBy: ['code'], fill: '0' }), undefined, '$tag_code'))
    .withPanel(series('Events per interval, by type', influxql({ from: 'event', fields: [{ field: 'seq', aggregate: 'count' }], perInterval: true, groupBy: ['type'], fill: '0' }), undefined, '$tag_type'))
    .withPanel(series('Devices going offline (status online=false)', influxql({ from: 'status', fields: [{ field: 'online', aggregate: 'count' }], where: [{ field: 'online', equals: false }], perInterval: true, groupBy: ['home'], fill: '0' }), undefined, '$tag_home'))
    .withPanel(
      new TableBuilder()
        .title('Latest rejected messages')
        .datasource(DATASOURCE)
        .withTarget(new InfluxQLTarget(influxql({ from: 'rejected', fields: [{ field: 'topic' }, { field: 'reason' }, { field: 'payload' }], newestFirst: true, limit: 50 })).table())
        .height(8)
        .span(24),
    )
    .build();
}

/** Every dashboard, by file name. */
export function allDashboards(): Record<string, Dashboard> {
  return {
    'bureau-overview.json': bureauOverview(),
    'home.json': homeDashboard(),
    'resident.json': residentDashboard(),
    'ingest-health.json': ingestHealth(),
  };
}
