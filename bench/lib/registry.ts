import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { USER_COST, generateMachineSecret, hashMachineSecret, hashSecret } from '../../common/secrets.ts';
import type { Device, Home, Resident, Room, ServiceAccount, SiteRegistry, User } from '../../contract/registry.ts';

/**
 * A generated bench registry: `devices` devices across `homes` homes (one floor each, a corridor
 * and ten bedrooms). Per home: one manual call point (fire alerts at once), one vital-signs monitor
 * worn by one resident (care alerts), the rest smoke detectors (the telemetry load).
 *
 * Every device has its own id but all share ONE secret and therefore one salt+hash string. Sharing
 * the hash does not change what the broker does per connection (one HMAC-SHA-256 per CONNECT, the
 * machine-secret format of issue 12; no cache involved), so it is fair for a benchmark — never do
 * this in a real site. FORMAT_VERSION 2: version 1 files held scrypt hashes (issue 6 figures); 3: devices
 * spread evenly over the homes (2 filled the first homes to the rounded-up size).
 *
 * The file is cached under .tmp/bench/ keyed by size, so runs reuse it.
 */
export const BENCH_DEVICE_SECRET = 'bench-device-secret-0f3a';
export const BENCH_SERVICE_SECRET = 'bench-service-secret-77c1';
export const BENCH_USER_PASSWORD = 'bench-user-password-5e2d';
export const BENCH_SUBSCRIBER = 'svc-bench';
export const BENCH_INTEGRATION = 'svc-bench-integration';
const FORMAT_VERSION = 3;
const BEDROOMS = 10;

export interface BenchDevice {
  readonly id: string;
  readonly homeId: string;
  readonly kind: 'smoke_detector' | 'manual_call_point' | 'vital_signs_monitor';
}

export interface BenchRegistry {
  readonly path: string;
  readonly homes: readonly string[];
  /** Smoke detectors: the telemetry load. */
  readonly loadDevices: readonly BenchDevice[];
  readonly callPoints: readonly BenchDevice[];
  readonly vitalMonitors: readonly BenchDevice[];
  readonly all: readonly BenchDevice[];
}

export function homeId(i: number): string {
  return `b${String(i).padStart(4, '0')}`;
}

/** `alarmHomes`: the first this many homes get a manual call point and a vital-signs monitor; the others smoke detectors only (default: every home). */
function buildSite(devices: number, homes: number, alarmHomes = homes): SiteRegistry {
  // Spread evenly (the first `devices % homes` homes one more), so that every home asked for exists:
  // ceil per home left the last homes empty (100,080 devices in 1,000 homes made 991).
  const base = Math.max(3, Math.floor(devices / homes));
  const extra = Math.max(0, devices - base * homes);
  const deviceHash = hashMachineSecret(BENCH_DEVICE_SECRET);
  const serviceHash = hashMachineSecret(BENCH_SERVICE_SECRET);
  const userHash = hashSecret(BENCH_USER_PASSWORD, USER_COST);
  const site: SiteRegistry = { version: 1, name: `bench ${devices} devices / ${homes} homes`, homes: [], devices: [], residents: [], services: [], users: [] };
  let made = 0;
  for (let h = 1; h <= homes && made < devices; h++) {
    const perHome = base + (h <= extra ? 1 : 0);
    const hid = homeId(h);
    const bedrooms = Array.from({ length: BEDROOMS }, (_, i) => `r${String(i + 1).padStart(2, '0')}`);
    const rooms: Room[] = [{ id: 'corridor', name: '走廊', nameEn: 'Corridor', kind: 'corridor', adjacent: bedrooms }];
    for (const r of bedrooms) rooms.push({ id: r, name: `${r}室`, nameEn: `Room ${r}`, kind: 'bedroom', adjacent: ['corridor'] });
    const home: Home = { id: hid, name: `测试院${h}`, nameEn: `Bench home ${h}`, address: 'bench', floors: [{ id: 'f1', name: '1楼', nameEn: 'Floor 1', level: 1, rooms }] };
    site.homes.push(home);
    const resident: Resident = { id: `${hid}-p1`, homeId: hid, roomId: 'r01', bed: 'A', name: '测试', age: 80, hypercapnic: false, fallRisk: false, turnIntervalMin: 120 };
    site.residents.push(resident);
    const add = (d: Omit<Device, 'secretHash'>): void => {
      if (made >= devices) return;
      site.devices.push({ ...d, secretHash: deviceHash });
      made++;
    };
    const alarms = h <= alarmHomes;
    if (alarms) {
      add({ id: `${hid}-mcp`, homeId: hid, roomId: 'corridor', kind: 'manual_call_point' });
      add({ id: `${hid}-vs-p1`, homeId: hid, roomId: 'r01', kind: 'vital_signs_monitor', residentId: resident.id });
    }
    for (let i = 0; i < (alarms ? perHome - 2 : perHome); i++) add({ id: `${hid}-sd-${String(i).padStart(4, '0')}`, homeId: hid, roomId: bedrooms[i % BEDROOMS] as string, kind: 'smoke_detector' });
    const staff: User = { username: `staff-${hid}`, displayName: `staff ${hid}`, role: 'staff', homeId: hid, passwordHash: userHash };
    site.users.push(staff);
  }
  site.users.push({ username: 'bureau', displayName: 'bureau', role: 'bureau', passwordHash: userHash });
  const services: ServiceAccount[] = [
    { id: 'svc-ingest', role: 'ingest', secretHash: serviceHash },
    { id: 'svc-alerts', role: 'alerts', secretHash: serviceHash },
    { id: BENCH_SUBSCRIBER, role: 'ingest', secretHash: serviceHash },
    { id: BENCH_INTEGRATION, role: 'integration', secretHash: serviceHash },
  ];
  site.services.push(...services);
  return site;
}

function summarise(path: string, site: SiteRegistry): BenchRegistry {
  const all: BenchDevice[] = site.devices.map((d) => ({ id: d.id, homeId: d.homeId, kind: d.kind as BenchDevice['kind'] }));
  return {
    path,
    homes: site.homes.map((h) => h.id),
    loadDevices: all.filter((d) => d.kind === 'smoke_detector'),
    callPoints: all.filter((d) => d.kind === 'manual_call_point'),
    vitalMonitors: all.filter((d) => d.kind === 'vital_signs_monitor'),
    all,
  };
}

/** Returns the cached registry file for this size, generating it on first use. */
/**
 * `alarmHomes` (default every home): only the first this many homes have a call point and a monitor.
 * A benchmark that connects only some homes' alarm devices must not register the others: a
 * registered device that never connects is, rightly, a device trouble per device after its
 * heartbeat budget, and 1,920 of them escalating kept alerts busy in session 9's first 100,000-device run.
 */
export function benchRegistry(root: string, devices: number, homes: number, alarmHomes?: number): BenchRegistry {
  const dir = join(root, '.tmp', 'bench');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `registry-v${FORMAT_VERSION}-${devices}d-${homes}h${alarmHomes !== undefined ? `-${alarmHomes}a` : ''}.json`);
  if (existsSync(path)) return summarise(path, JSON.parse(readFileSync(path, 'utf8')) as SiteRegistry);
  const site = buildSite(devices, homes, alarmHomes);
  writeFileSync(path, JSON.stringify(site));
  return summarise(path, site);
}

export interface SecretDevice extends BenchDevice {
  /** This device's own random 128-bit secret (the registry holds only its salted HMAC). */
  readonly secret: string;
}

/**
 * A registry like benchRegistry's, but every device has its OWN random 128-bit secret
 * (generateMachineSecret, hashed with hashMachineSecret), as a real site's registry does: the
 * reconnect benchmark (bench/reconnect.ts) measures the broker's authentication per device, so no
 * shared hash. Written fresh into `dir` (never cached: the secrets are returned, not stored).
 */
export function secretPerDeviceRegistry(dir: string, devices: number, homes: number): { readonly path: string; readonly devices: readonly SecretDevice[] } {
  const site = buildSite(devices, homes);
  const out: SecretDevice[] = [];
  for (const d of site.devices) {
    const secret = generateMachineSecret();
    d.secretHash = hashMachineSecret(secret);
    out.push({ id: d.id, homeId: d.homeId, kind: d.kind as BenchDevice['kind'], secret });
  }
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `registry-${devices}d-own-secrets.json`);
  writeFileSync(path, JSON.stringify(site));
  return { path, devices: out };
}
