// zh-CN first, English as a switch (issue 5). Strings only; alert texts come bilingual from the server.

const STRINGS = {
  zh: {
    title: '颐养守护 · 实时监控', sessionExpired: '登录已结束（过期或已在别处退出），请重新登录', login: '登录', username: '用户名', password: '密码', loginFailed: '用户名或密码错误',
    logout: '退出', lang: 'English', connected: '实时连接正常', disconnected: '连接已断开 — 正在重连，期间的警报将在恢复后同步',
    resynced: '已重新连接并同步', floors: '楼层与房间', residents: '卧床长者', alerts: '当前警报', noAlerts: '暂无警报',
    ack: '确认收到', confirm: '核实', realFire: '真实火警', falseAlarm: '误报', test: '测试', fault: '故障', resolve: '解除',
    comment: '备注', careAction: '护理记录', turned: '已翻身', changed: '已更换', checked: '已查看', calledDoctor: '已呼叫医生',
    since: '发生于', where: '位置', ackIn: '请在 {s} 秒内确认收到', confirmIn: '请在 {s} 内核实现场', overdue: '已超时 — 已上报民政局/119',
    escalated119: '已升级 119', escalated: '已升级', level: '升级级别', state_raised: '新警报', state_acknowledged: '已确认收到',
    state_confirmed: '已核实', state_escalated: '已升级', state_resolved: '已解除',
    dev_normal: '正常', dev_prealarm: '预警', dev_alarm: '火警', dev_supervisory: '监管', dev_trouble: '故障', dev_offline: '离线', dev_unknown: '无数据',
    hr: '心率', spo2: '血氧', rr: '呼吸', temp: '体温', news2: 'NEWS2', partial: '不完整', missing: '缺少', inBed: '在床', outOfBed: '离床', bedUnknown: '床位未知',
    wet: '潮湿', nextTurn: '下次翻身', turnOverdue: '翻身已超时', min: '分钟', history: '近期趋势', close: '关闭',
    bureau: '民政局总览', homes: '各养老机构', fireAlerts: '火警与升级', statistics: '月度统计', month: '月份', downloadCsv: '下载 CSV',
    home_normal: '正常', home_fire: '火警', home_escalated: '已升级 119', home_trouble: '故障', home_comm: '通讯中断',
    devicesOnline: '在线设备', news2High: 'NEWS2≥5', openByClass: '未结警报', cls_alarm: '火警', cls_prealarm: '预警', cls_supervisory: '监管', cls_trouble: '故障', cls_care: '护理',
    raisedToAck: '响应', ackToConfirm: '核实', toResolve: '解除', delivery: '送达', home: '机构', enableSound: '点击启用警报声音',
    alertsCount: '警报数', falseAlarmRate: '误报率', ackMedian: '确认中位数', ackP95: '确认P95', resolveMedian: '解除中位数', resolveP95: '解除P95',
    onlineRate: '设备在线率', turnsOnTime: '按时翻身率', loading: '加载中…', updatedAt: '统计于', refresh: '刷新', noOtherAlerts: '无其他警报', error: '出错', sec: '秒', all: '全部', bed: '{b}床', soundOn: '声音已启用', staffView: '值班视图',
    // Issue 11: incidents and disablements (屏蔽 / 测试).
    kind_fire: '火警事件', kind_care: '护理事件', kind_device: '设备事件', sev_critical: '危急', sev_high: '高', sev_medium: '中', sev_low: '低',
    firstPoint: '首警点', laterPoints: '后续报警点', points: '{n} 个报警点', joinedAfter: '首警后 {d}', rooms: '涉及房间', severity: '级别', state: '状态', kind: '类型',
    inhibited: '已抑制', inh_home_comm_loss: '全院通讯中断，不单独报警', inh_fire_in_room: '同一房间已有火警，不单独报警',
    newPoint: '新报警点 — 火势可能蔓延', silence: '消音', incidents: '事件', resident: '长者', device: '设备',
    dkind_smoke_detector: '感烟探测器', dkind_heat_detector: '感温探测器', dkind_manual_call_point: '手动报警按钮', dkind_electrical_fire_monitor: '电气火灾监控', dkind_gas_detector: '可燃气体探测器', dkind_water_pressure_sensor: '消防水压', dkind_vital_signs_monitor: '生命体征监测', dkind_bed_sensor: '离床感应', dkind_wetness_sensor: '尿湿感应',
    disablements: '屏蔽与测试', noDisablements: '无屏蔽或测试中的点位', mode_test: '测试中', mode_disabled: '已屏蔽', until: '至', by: '操作人', reason: '原因', endsAt: '结束时间', scope: '范围',
    scope_device: '设备', scope_room: '房间', scope_home: '全院', target: '对象', duration: '时长', minutes: '{n} 分钟', hours: '{n} 小时', disableSubmit: '开始屏蔽/测试', enableNow: '提前结束',
    suppressed: '期间信号', wholeHomeDisabled: '全院{m}，至 {t}：火警信号只记录不报警', disabledNote: '{m}至 {t}', reasonRequired: '请填写原因', disabledOk: '已设置', enabledOk: '已结束',
    notConnected: '实时连接已断开，请稍后再试', modeCol: '模式', startedAt: '开始时间',
    // Issue 15: the page on a phone.
    signedOutHead: '已退出登录 — 请重新登录以接收新警报！', signedOutDetail: '下列警报为退出前收到的最后状态，仍在鸣响；新警报在重新登录前不会出现在本机。', signedOutAct: '已退出登录 — 请先重新登录再操作（本次操作未执行）',
    sessionEnding: '登录将于 {t} 结束，续期失败：请在此之前重新登录，以免收不到警报', pollHead: '服务器无响应 — 警报可能无法送达！', pollDetail: '实时数据请求失败，正在重试。',
    offlineHead: '离线 — 本机收不到警报！', offlineWait: '网络中断：等待恢复后自动重新连接。此期间请用其他方式（对讲机、消防控制室）确认警报。',
    enableNotify: '开启通知', notifyOn: '后台警报将以系统通知提醒', notifyOnShort: '通知已开启', notifyBlocked: '通知已被浏览器阻止，请在浏览器设置中允许', notifyBlockedShort: '通知被阻止',
    notifyUnavailable: '此连接不支持系统通知（需要 HTTPS）', notifyUnavailableShort: '无通知',
  },
  en: {
    title: 'CareWatch · Live monitor', sessionExpired: 'Your session has ended (expired, or signed out); please sign in again', login: 'Sign in', username: 'Username', password: 'Password', loginFailed: 'Wrong username or password',
    logout: 'Sign out', lang: '中文', connected: 'Live connection OK', disconnected: 'Connection lost — reconnecting; alerts raised meanwhile will be synced',
    resynced: 'Reconnected and re-synced', floors: 'Floors and rooms', residents: 'Bedridden residents', alerts: 'Active alerts', noAlerts: 'No active alerts',
    ack: 'Acknowledge', confirm: 'Confirm', realFire: 'Real fire', falseAlarm: 'False alarm', test: 'Test', fault: 'Fault', resolve: 'Resolve',
    comment: 'Comment', careAction: 'Care action', turned: 'Turned', changed: 'Changed', checked: 'Checked', calledDoctor: 'Called doctor',
    since: 'Since', where: 'Where', ackIn: 'Acknowledge within {s} s', confirmIn: 'Investigate and confirm within {s}', overdue: 'Deadline missed — escalated to the bureau / 119',
    escalated119: 'Escalated: call 119', escalated: 'Escalated', level: 'Level', state_raised: 'New', state_acknowledged: 'Acknowledged',
    state_confirmed: 'Confirmed', state_escalated: 'Escalated', state_resolved: 'Resolved',
    dev_normal: 'Normal', dev_prealarm: 'Pre-alarm', dev_alarm: 'ALARM', dev_supervisory: 'Supervisory', dev_trouble: 'Trouble', dev_offline: 'Offline', dev_unknown: 'No data',
    hr: 'HR', spo2: 'SpO₂', rr: 'RR', temp: 'Temp', news2: 'NEWS2', partial: 'partial', missing: 'missing', inBed: 'In bed', outOfBed: 'Out of bed', bedUnknown: 'Bed unknown',
    wet: 'Wet', nextTurn: 'Next turn', turnOverdue: 'Turn overdue', min: 'min', history: 'Recent history', close: 'Close',
    bureau: 'Bureau overview', homes: 'Care homes', fireAlerts: 'Fire alarms and escalations', statistics: 'Monthly statistics', month: 'Month', downloadCsv: 'Download CSV',
    home_normal: 'Normal', home_fire: 'FIRE', home_escalated: 'Call 119', home_trouble: 'Trouble', home_comm: 'Comms lost',
    devicesOnline: 'Devices online', news2High: 'NEWS2≥5', openByClass: 'Open alerts', cls_alarm: 'Fire', cls_prealarm: 'Pre-alarm', cls_supervisory: 'Superv.', cls_trouble: 'Trouble', cls_care: 'Care',
    raisedToAck: 'Ack', ackToConfirm: 'Confirm', toResolve: 'Resolve', delivery: 'Delivery', home: 'Home', enableSound: 'Click to enable alarm sound',
    alertsCount: 'Alerts', falseAlarmRate: 'False-alarm rate', ackMedian: 'Ack median', ackP95: 'Ack p95', resolveMedian: 'Resolve median', resolveP95: 'Resolve p95',
    onlineRate: 'Device online', turnsOnTime: 'Turns on time', loading: 'Loading…', updatedAt: 'As of', refresh: 'Refresh', noOtherAlerts: 'No other alerts', error: 'Error', sec: 's', all: 'All', bed: 'bed {b}', soundOn: 'Sound on', staffView: 'Duty view',
    kind_fire: 'Fire incident', kind_care: 'Care incident', kind_device: 'Device incident', sev_critical: 'Critical', sev_high: 'High', sev_medium: 'Medium', sev_low: 'Low',
    firstPoint: 'First alarm point', laterPoints: 'Points that joined', points: '{n} point(s)', joinedAfter: '+{d} after first', rooms: 'Rooms', severity: 'Severity', state: 'State', kind: 'Kind',
    inhibited: 'Held back', inh_home_comm_loss: 'whole home lost communication; not alarmed on its own', inh_fire_in_room: 'fire already reported in this room; not alarmed on its own',
    newPoint: 'New alarm point — the fire may be spreading', silence: 'Silence', incidents: 'Incidents', resident: 'Resident', device: 'Device',
    dkind_smoke_detector: 'Smoke detector', dkind_heat_detector: 'Heat detector', dkind_manual_call_point: 'Manual call point', dkind_electrical_fire_monitor: 'Electrical fire monitor', dkind_gas_detector: 'Gas detector', dkind_water_pressure_sensor: 'Water pressure', dkind_vital_signs_monitor: 'Vital signs monitor', dkind_bed_sensor: 'Bed sensor', dkind_wetness_sensor: 'Wetness sensor',
    disablements: 'Disabled and test mode', noDisablements: 'Nothing disabled or in test', mode_test: 'In test', mode_disabled: 'Disabled', until: 'until', by: 'By', reason: 'Reason', endsAt: 'Ends', scope: 'Scope',
    scope_device: 'Device', scope_room: 'Room', scope_home: 'Whole home', target: 'Target', duration: 'Duration', minutes: '{n} min', hours: '{n} h', disableSubmit: 'Start disable/test', enableNow: 'End now',
    suppressed: 'Signals meanwhile', wholeHomeDisabled: 'Whole home {m} until {t}: fire signals are recorded, not alarmed', disabledNote: '{m} until {t}', reasonRequired: 'A reason is required', disabledOk: 'Set', enabledOk: 'Ended',
    notConnected: 'Live connection lost; try again in a moment', modeCol: 'Mode', startedAt: 'Started',
    signedOutHead: 'SIGNED OUT — sign in to receive new alarms', signedOutDetail: 'The alarms below are the last ones received and keep sounding; new alarms do not reach this device until you sign in.', signedOutAct: 'Signed out — sign in to act (this action was not done)',
    sessionEnding: 'Your session ends at {t} and could not be renewed: sign in again before then, or alarms stop reaching this device', pollHead: 'SERVER NOT ANSWERING — alarms may not arrive', pollDetail: 'Live data requests are failing; retrying.',
    offlineHead: 'OFFLINE — alerts are NOT being received on this device', offlineWait: 'No network: the page reconnects by itself when it returns. Meanwhile check alarms another way (radio, fire control room).',
    enableNotify: 'Enable notifications', notifyOn: 'Alerts in the background arrive as system notifications', notifyOnShort: 'Notifications on', notifyBlocked: 'The browser blocks notifications; allow them in its settings', notifyBlockedShort: 'Notifications blocked',
    notifyUnavailable: 'No system notifications on this connection (HTTPS needed)', notifyUnavailableShort: 'No notifications',
  },
};

let lang = localStorage.getItem('cw.lang') === 'en' ? 'en' : 'zh';

export function getLang() {
  return lang;
}

export function setLang(next) {
  lang = next === 'en' ? 'en' : 'zh';
  localStorage.setItem('cw.lang', lang);
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}

export function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}

/** Picks the language of a server-side bilingual text ({ zh, en }). */
export function bi(text) {
  return text ? (lang === 'zh' ? text.zh : text.en) : '';
}

/** Chinese or English name of a registry object ({ name, nameEn }). */
export function nm(o) {
  return o ? (lang === 'zh' ? o.name : o.nameEn ?? o.name) : '';
}

export function fmtTime(ms) {
  if (!ms) return '—';
  return new Date(ms).toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}${lang === 'zh' ? '秒' : ' s'}`;
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}
