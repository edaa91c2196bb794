/**
 * Generates config/demo-site.json, the demo site: 9 care homes of one district, their floors and
 * rooms, fire devices in every room and corridor, 46 bedridden residents with their monitors, a
 * nurse call (呼叫器) at every bed and in every bathroom, and demo accounts; and (issue 15) two
 * home-care providers with five households of bedridden elders living at home, an on-call roster
 * for every care home and the bureau's contacts (ladder levels 0–2, docs/alerts.md "Notifications").
 * Deterministic (salts derive from ids) so regenerating yields the same file.
 *
 *   npx tsx config/demo-site.ts            # rewrite config/demo-site.json
 *
 * Demo secrets (documented in README and docs/registry.md, refused when NODE_ENV=production):
 *   device or service account X:  demo-X        user U:  demo-U
 * Devices and service accounts get the machine-secret hash (HMAC-SHA-256), users scrypt
 * (common/secrets.ts). Real sites give machines 128-bit random secrets (generateMachineSecret).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { USER_COST, hashMachineSecret, hashSecret } from '../common/secrets.ts';
import type { Device, FamilyContact, Floor, Home, Provider, Resident, Room, Roster, RosterPerson, ServiceAccount, SiteContacts, SiteRegistry, User } from '../contract/registry.ts';
import type { DeviceKind } from '../contract/device-kinds.ts';

export function demoSecret(id: string): string {
  return `demo-${id}`;
}

function salt(id: string): Buffer {
  return createHash('sha256').update(`carewatch-demo-salt:${id}`).digest().subarray(0, 16);
}

const HOMES: Array<[string, string, string, number, number]> = [
  // id, name, English name, floors, residents
  ['h01', '阳光颐养院', 'Sunshine Care Home', 3, 6],
  ['h02', '福寿康养中心', 'Fushou Wellness Centre', 2, 5],
  ['h03', '松鹤养老院', 'Pine and Crane Nursing Home', 2, 5],
  ['h04', '夕阳红护理院', 'Sunset Glow Nursing Home', 3, 5],
  ['h05', '康宁敬老院', 'Kangning Elderly Home', 2, 5],
  ['h06', '仁爱颐养院', 'Renai Care Home', 2, 5],
  ['h07', '长青养老中心', 'Evergreen Senior Centre', 3, 5],
  ['h08', '安泰护理院', 'Antai Nursing Home', 2, 5],
  ['h09', '和美敬老院', 'Hemei Elderly Home', 2, 5],
];
const STREETS = ['解放路', '人民路', '建设路', '和平街', '文化路', '中山路', '新华街', '青年路', '长安街'];
const SURNAMES = ['王', '李', '张', '刘', '陈', '杨', '赵', '黄', '周', '吴', '徐', '孙', '胡', '朱', '高', '林'];
const GIVEN = ['秀英', '桂兰', '玉兰', '建国', '德明', '淑珍', '国华', '凤英', '志强', '秀兰', '文华', '玉珍', '振华', '桂芳', '永福', '金凤'];
/** Issue 15: households (id, elder's surname and given name, address, provider). */
const HOUSEHOLDS: Array<[string, string, string, string, string]> = [
  ['hh01', '赵', '桂英', '解放路3号2单元301', 'pv01'],
  ['hh02', '钱', '德福', '人民路18号1单元102', 'pv01'],
  ['hh03', '孙', '淑兰', '建设路7号5单元601', 'pv01'],
  ['hh04', '周', '有才', '和平街22号3单元202', 'pv02'],
  ['hh05', '吴', '凤兰', '文化路9号1单元401', 'pv02'],
];
const FAMILY_GIVEN = ['丽华', '建军', '海燕', '志刚', '晓梅', '红霞'];

function buildProviders(): Provider[] {
  const provider = (id: string, name: string, nameEn: string, phone: string, staff: Array<[string, string, string]>): Provider => ({
    id,
    name,
    nameEn,
    phone,
    timezone: 'Asia/Shanghai',
    people: staff.map(([pid, pname, pphone]) => ({ id: pid, name: pname, role: 'caregiver', phone: pphone })),
    // A day and a night caregiver on call every day (12-hour shifts; the night one crosses midnight).
    shifts: [
      { id: 'day', name: '白班', days: [1, 2, 3, 4, 5, 6, 7], start: '08:00', end: '20:00', people: [staff[0]?.[0] ?? ''] },
      { id: 'night', name: '夜班', days: [1, 2, 3, 4, 5, 6, 7], start: '20:00', end: '08:00', people: [staff[1]?.[0] ?? ''] },
    ],
    managers: [{ id: `${id}-manager`, name: `${name.slice(0, 2)}站长`, role: 'manager', phone: phone.replace(/.$/, '9') }],
  });
  return [
    provider('pv01', '安心居家护理服务中心', 'Anxin Home Care Centre', '13600000010', [['pv01-cg1', '刘护理员', '13600000011'], ['pv01-cg2', '马护理员', '13600000012']]),
    provider('pv02', '康乐居家养老服务社', 'Kangle Home Care Services', '13600000020', [['pv02-cg1', '郑护理员', '13600000021'], ['pv02-cg2', '冯护理员', '13600000022']]),
  ];
}

/** Issue 15: the nurses' given names (with SURNAMES) and the directors' names of the demo rosters. */
const NURSE_GIVEN = ['秀梅', '丽娟', '春燕', '海霞', '晓红', '美玲', '建英'];
const DIRECTORS = ['张建华', '王淑芬', '李国强', '刘玉梅', '陈志明', '杨桂香', '赵德胜', '黄丽萍', '周文斌'];

/**
 * A care home's on-call roster (issue 15): the three-shift system (三班倒) of Chinese nursing homes,
 * 白班 08:00–16:00, 小夜班 16:00–24:00, 大夜班 00:00–08:00, Asia/Shanghai. Seven nurses: two on
 * weekday days (residents are washed, fed and turned then), one on weekend days, and one alone on
 * each evening and night, alternating so nobody works two shifts back to back. Every minute of the
 * week has someone on duty (test/config/demo-rosters.test.ts). Phones are the demo's fictitious
 * 1380NNN… numbers: the SMS and group-robot channels of config/notify-demo.json reach them at the
 * demo notification receiver (device-sim/notify-sink.ts).
 */
function careHomeRoster(homeId: string, hi: number): Roster {
  const hh = String(hi + 1).padStart(2, '0');
  const nurse = (i: number): RosterPerson => ({
    id: `${homeId}-n${i}`,
    name: `${SURNAMES[(hi * 3 + i * 5) % SURNAMES.length]}${NURSE_GIVEN[(hi + i) % NURSE_GIVEN.length]}`,
    role: i <= 2 ? '护士 nurse' : '护理员 carer',
    phone: `13800${hh}0${String(i).padStart(3, '0')}`,
  });
  const people = [1, 2, 3, 4, 5, 6, 7].map(nurse);
  const id = (i: number): string => `${homeId}-n${i}`;
  return {
    homeId,
    timezone: 'Asia/Shanghai',
    people,
    shifts: [
      { id: 'day-weekday', name: '白班（工作日）', days: [1, 2, 3, 4, 5], start: '08:00', end: '16:00', people: [id(1), id(2)] },
      { id: 'day-weekend', name: '白班（周末）', days: [6, 7], start: '08:00', end: '16:00', people: [id(3)] },
      { id: 'evening-a', name: '小夜班 A', days: [1, 3, 5, 7], start: '16:00', end: '00:00', people: [id(4)] },
      { id: 'evening-b', name: '小夜班 B', days: [2, 4, 6], start: '16:00', end: '00:00', people: [id(5)] },
      { id: 'night-a', name: '大夜班 A', days: [1, 3, 5, 7], start: '00:00', end: '08:00', people: [id(6)] },
      { id: 'night-b', name: '大夜班 B', days: [2, 4, 6], start: '00:00', end: '08:00', people: [id(7)] },
    ],
    directors: [{ id: `${homeId}-director`, name: `${DIRECTORS[hi % DIRECTORS.length]}院长`, role: '院长 director', phone: `13900${hh}0001` }],
  };
}

/**
 * The bureau's contacts (ladder level 2). The roster model has no shifts for the bureau: every
 * contact is told of every escalation to the bureau. The duty officer's phone (值班电话) is staffed
 * around the clock; the section chief and the deputy are told as well. The webhook address is the
 * person's id in the bureau's own duty system (the demo receiver prints it).
 */
function bureauContacts(): SiteContacts {
  const officer = (id: string, name: string, role: string, phone: string): RosterPerson => ({ id, name, role, phone, addresses: { 'bureau-hook': id } });
  return {
    bureau: [
      officer('bureau-duty', '区民政局值班室', '值班员 duty officer (24 h)', '13700000001'),
      officer('bureau-chen', '陈科长', '养老服务科科长 section chief', '13700000002'),
      officer('bureau-sun', '孙副科长', '副科长 deputy section chief', '13700000003'),
    ],
  };
}

const BEDROOMS_PER_FLOOR = 5;
/** Two beds to a bedroom (A by the door, B by the window). */
const BEDS = ['A', 'B'] as const;

function roomsOfFloor(level: number): Room[] {
  const rooms: Room[] = [];
  const corridor = `f${level}-corridor`;
  const bedrooms: string[] = [];
  for (let i = 1; i <= BEDROOMS_PER_FLOOR; i++) bedrooms.push(`r${level}0${i}`);
  const bath = `f${level}-bath`;
  rooms.push({ id: corridor, name: `${level}楼走廊`, nameEn: `Floor ${level} corridor`, kind: 'corridor', adjacent: [...bedrooms, bath] });
  bedrooms.forEach((id, i) => {
    const adjacent = [corridor];
    if (i > 0) adjacent.push(bedrooms[i - 1] as string);
    if (i < bedrooms.length - 1) adjacent.push(bedrooms[i + 1] as string);
    rooms.push({ id, name: `${id.slice(1)}室`, nameEn: `Room ${id.slice(1)}`, kind: 'bedroom', adjacent });
  });
  // The floor's shared bathroom: where residents who can walk are most likely to fall.
  rooms.push({ id: bath, name: `${level}楼卫生间`, nameEn: `Floor ${level} bathroom`, kind: 'bathroom', adjacent: [corridor] });
  if (level === 1) {
    const corr = rooms[0] as Room;
    // EN 54-5 class A1R heat detectors suit kitchens where smoke detectors would false-alarm;
    // the kitchen's own higher threshold is set here (a kitchen is not a bedroom).
    rooms.push({ id: 'kitchen', name: '厨房', nameEn: 'Kitchen', kind: 'kitchen', adjacent: ['dining', corridor], thresholds: { heat_fixed_c: 65 } });
    rooms.push({ id: 'dining', name: '餐厅', nameEn: 'Dining room', kind: 'dining', adjacent: ['kitchen', corridor] });
    rooms.push({ id: 'plant', name: '配电及消防水泵房', nameEn: 'Switch room and fire pump room', kind: 'plant', adjacent: [corridor] });
    rooms.push({ id: 'office', name: '值班室', nameEn: 'Duty office', kind: 'office', adjacent: [corridor] });
    corr.adjacent.push('kitchen', 'dining', 'plant', 'office');
  }
  return rooms;
}

export function buildDemoSite(): SiteRegistry {
  const homes: Home[] = [];
  const devices: Device[] = [];
  const residents: Resident[] = [];
  const users: User[] = [];
  const rosters: Roster[] = [];
  let personIndex = 0;

  const addDevice = (homeId: string, roomId: string, kind: DeviceKind, suffix: string, residentId?: string): void => {
    const id = `${homeId}-${suffix}`;
    const dev: Device = { id, homeId, roomId, kind, secretHash: hashMachineSecret(demoSecret(id), salt(id)), demoSecret: true };
    if (residentId !== undefined) dev.residentId = residentId;
    devices.push(dev);
  };

  HOMES.forEach(([homeId, name, nameEn, floorCount, residentCount], hi) => {
    const floors: Floor[] = [];
    for (let level = 1; level <= floorCount; level++) {
      floors.push({ id: `f${level}`, name: `${level}楼`, nameEn: `Floor ${level}`, level, rooms: roomsOfFloor(level) });
    }
    homes.push({ id: homeId, name, nameEn, address: `示范区${STREETS[hi]}${(hi + 1) * 12}号`, floors });
    rosters.push(careHomeRoster(homeId, hi));

    for (const floor of floors) {
      for (const room of floor.rooms) {
        switch (room.kind) {
          case 'kitchen':
            addDevice(homeId, room.id, 'heat_detector', `hd-${room.id}`);
            addDevice(homeId, room.id, 'gas_detector', `gd-${room.id}`);
            break;
          case 'plant':
            addDevice(homeId, room.id, 'smoke_detector', `sd-${room.id}`);
            addDevice(homeId, room.id, 'electrical_fire_monitor', `ef-${room.id}`);
            addDevice(homeId, room.id, 'water_pressure_sensor', `wp-${room.id}`);
            break;
          case 'corridor':
            addDevice(homeId, room.id, 'smoke_detector', `sd-${room.id}`);
            addDevice(homeId, room.id, 'manual_call_point', `mcp-${room.id}`);
            break;
          case 'bathroom':
            // Shower steam false-alarms optical smoke detectors: a heat detector (EN 54-5 A1R) as
            // in the kitchen, and a pull cord by the toilet and shower, not tied to one resident.
            addDevice(homeId, room.id, 'heat_detector', `hd-${room.id}`);
            addDevice(homeId, room.id, 'nurse_call', `nc-${room.id}`);
            break;
          default:
            addDevice(homeId, room.id, 'smoke_detector', `sd-${room.id}`);
        }
      }
    }

    const bedrooms = floors.flatMap((f) => f.rooms.filter((r) => r.kind === 'bedroom'));
    for (let i = 0; i < residentCount; i++) {
      const room = bedrooms[Math.floor(i / 2)] as Room;
      const id = `${homeId}-p${String(i + 1).padStart(2, '0')}`;
      const n = personIndex++;
      residents.push({
        id,
        homeId,
        roomId: room.id,
        bed: BEDS[i % 2] as string,
        name: `${SURNAMES[n % SURNAMES.length]}${GIVEN[(n * 7) % GIVEN.length]}`,
        age: 72 + ((n * 13) % 24),
        hypercapnic: n % 9 === 4,
        fallRisk: n % 3 === 0,
        turnIntervalMin: [120, 120, 180, 90, 240, 120][n % 6] as number,
      });
      addDevice(homeId, room.id, 'nurse_call', `nc-p${String(i + 1).padStart(2, '0')}`, id);
      addDevice(homeId, room.id, 'vital_signs_monitor', `vs-p${String(i + 1).padStart(2, '0')}`, id);
      addDevice(homeId, room.id, 'bed_sensor', `bed-p${String(i + 1).padStart(2, '0')}`, id);
      addDevice(homeId, room.id, 'wetness_sensor', `wet-p${String(i + 1).padStart(2, '0')}`, id);
    }

    // A call button at every bed: a free bed's is room-level (no resident to name yet).
    for (const room of bedrooms) {
      for (const bed of BEDS) {
        if (!residents.some((r) => r.homeId === homeId && r.roomId === room.id && r.bed === bed)) addDevice(homeId, room.id, 'nurse_call', `nc-${room.id}-${bed.toLowerCase()}`);
      }
    }

    const user = (username: string, displayName: string, role: User['role']): User => ({
      username,
      displayName,
      role,
      homeId,
      passwordHash: hashSecret(demoSecret(username), USER_COST, salt(username)),
      demoSecret: true,
    });
    users.push(user(`staff-${homeId}`, `${name}值班员`, 'staff'));
    users.push(user(`director-${homeId}`, `${name}院长`, 'director'));
  });

  // Issue 15: elders who live at home, served by third-party home-care providers.
  const providers = buildProviders();
  HOUSEHOLDS.forEach(([homeId, surname, given, street, providerId], i) => {
    const elder = `${surname}${given}`;
    const rooms: Room[] = [
      { id: 'bedroom', name: '卧室', nameEn: 'Bedroom', kind: 'bedroom', adjacent: ['living'] },
      { id: 'living', name: '客厅', nameEn: 'Living room', kind: 'activity', adjacent: ['bedroom', 'kitchen'] },
      // A home kitchen, as a care home's: heat detection (EN 54-5 A1R) with the kitchen threshold.
      { id: 'kitchen', name: '厨房', nameEn: 'Kitchen', kind: 'kitchen', adjacent: ['living'], thresholds: { heat_fixed_c: 65 } },
    ];
    const family: FamilyContact[] = [
      { id: `${homeId}-fam1`, name: `${surname}${FAMILY_GIVEN[i % FAMILY_GIVEN.length]}`, relation: i % 2 === 0 ? '女儿 daughter' : '儿子 son', phone: `1390000${String(100 + i * 2).padStart(4, '0')}`, severities: ['critical', 'high'] },
    ];
    if (i % 2 === 0) family.push({ id: `${homeId}-fam2`, name: `${SURNAMES[(i + 5) % SURNAMES.length]}${FAMILY_GIVEN[(i + 3) % FAMILY_GIVEN.length]}`, relation: '儿媳 daughter-in-law', phone: `1390000${String(101 + i * 2).padStart(4, '0')}`, severities: ['critical'] });
    homes.push({
      id: homeId,
      name: `${elder}家`,
      nameEn: `${elder} household`,
      address: `示范区${street}`,
      kind: 'household',
      providerId,
      familyContacts: family,
      floors: [{ id: 'home', name: '住宅', nameEn: 'Home', level: 1, rooms }],
    });
    const residentId = `${homeId}-p01`;
    const n = personIndex++;
    residents.push({ id: residentId, homeId, roomId: 'bedroom', bed: 'A', name: elder, age: 78 + ((n * 7) % 15), hypercapnic: false, fallRisk: true, turnIntervalMin: 120 });
    addDevice(homeId, 'bedroom', 'smoke_detector', 'sd-bedroom');
    addDevice(homeId, 'living', 'smoke_detector', 'sd-living');
    addDevice(homeId, 'kitchen', 'heat_detector', 'hd-kitchen');
    addDevice(homeId, 'bedroom', 'nurse_call', 'nc-p01', residentId);
    addDevice(homeId, 'bedroom', 'vital_signs_monitor', 'vs-p01', residentId);
    addDevice(homeId, 'bedroom', 'bed_sensor', 'bed-p01', residentId);
  });
  for (const p of providers) {
    const username = `provider-${p.id}`;
    users.push({ username, displayName: `${p.name}护理员`, role: 'provider', providerId: p.id, passwordHash: hashSecret(demoSecret(username), USER_COST, salt(username)), demoSecret: true });
    // The provider's manager (ladder level 1) edits its roster: a provider user is its manager when
    // the username is a manager's id in the registry (alerts/notify/roster-routes.ts).
    for (const m of p.managers) {
      users.push({ username: m.id, displayName: `${p.name}${m.name}`, role: 'provider', providerId: p.id, passwordHash: hashSecret(demoSecret(m.id), USER_COST, salt(m.id)), demoSecret: true });
    }
  }

  for (const [username, displayName, role] of [
    ['bureau', '区民政局值班员', 'bureau'],
    ['admin', '系统管理员', 'admin'],
  ] as const) {
    users.push({ username, displayName, role, passwordHash: hashSecret(demoSecret(username), USER_COST, salt(username)), demoSecret: true });
  }

  const services: ServiceAccount[] = (['ingest', 'alerts', 'integration', 'simulator'] as const).map((role) => ({
    id: `svc-${role}`,
    role,
    secretHash: hashMachineSecret(demoSecret(`svc-${role}`), salt(`svc-${role}`)),
    demoSecret: true,
  }));

  return { version: 1, name: '示范区民政局 demo district', homes, devices, residents, services, users, providers, rosters, contacts: bureauContacts() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const site = buildDemoSite();
  const out = fileURLToPath(new URL('./demo-site.json', import.meta.url));
  writeFileSync(out, `${JSON.stringify(site, null, 1)}\n`);
  console.log(`wrote ${out}: ${site.homes.length} homes, ${site.devices.length} devices, ${site.residents.length} residents, ${site.users.length} users`);
}
