// Minimal live alert page (issue 2). Plain ES module, no framework, no CDN: the socket.io client is
// served by the alerts process itself at /socket.io/socket.io.js (global `io`).
const STATE_TEXT = {
  raised: '新告警 · Raised',
  acknowledged: '已确认收到 · Acknowledged',
  confirmed: '已核实 · Confirmed',
  escalated: '已升级 · Escalated',
  resolved: '已解除 · Resolved',
};
const CATEGORY_TEXT = { fire: '火警 Fire', care: '护理 Care', device: '设备 Device' };
const LEVEL_TEXT = ['值班人员 duty staff', '院长 director', '民政局/119 bureau'];

const alerts = new Map(); // id → latest AlertMessage (higher version wins)
let socket;

const $ = (sel) => document.querySelector(sel);

function render() {
  const list = $('#alerts');
  const open = [...alerts.values()].filter((a) => a.state !== 'resolved').sort((a, b) => b.raisedAt - a.raisedAt);
  $('#empty').hidden = open.length > 0;
  list.replaceChildren(...open.map(renderAlert));
}

function renderAlert(a) {
  const li = document.createElement('li');
  li.className = `alert ${a.category} ${a.state}`;
  li.dataset.id = a.id;
  const text = document.createElement('div');
  const title = document.createElement('div');
  title.textContent = `${CATEGORY_TEXT[a.category] ?? a.category} · ${a.message.zh} / ${a.message.en}`;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const state = document.createElement('span');
  state.className = 'state';
  state.textContent = STATE_TEXT[a.state] ?? a.state;
  const by = a.acknowledgedBy ? ` · ${a.acknowledgedBy}` : '';
  const level = a.escalationLevel ? ` · ${LEVEL_TEXT[a.escalationLevel] ?? a.escalationLevel}` : '';
  meta.append(state, ` · ${a.homeId} · ${new Date(a.raisedAt).toLocaleTimeString('zh-CN')}${by}${level}`);
  text.append(title, meta);
  li.append(text);
  if (a.acknowledgedAt === undefined) {
    const btn = document.createElement('button');
    btn.textContent = '确认收到 · Acknowledge';
    btn.addEventListener('click', () => {
      btn.disabled = true;
      socket.emit('ack', a.id, (res) => {
        if (res.ok) upsert(res.alert);
        else {
          btn.disabled = false;
          alert(`${res.code}: ${res.error}`);
        }
      });
    });
    li.append(btn);
  }
  return li;
}

function upsert(a) {
  const prior = alerts.get(a.id);
  if (prior && prior.version >= a.version) return; // a stale copy
  alerts.set(a.id, a);
  render();
}

function connect(token, user) {
  $('#login').hidden = true;
  $('#board').hidden = false;
  $('#who').textContent = `${user.displayName} (${user.role}${user.homeId ? ` · ${user.homeId}` : ''})`;
  // eslint-disable-next-line no-undef
  socket = io({ auth: { token } });
  socket.on('connect', () => {
    $('#conn').textContent = '已连接 · live';
    $('#conn').className = 'conn on';
  });
  socket.on('disconnect', () => {
    $('#conn').textContent = '未连接 · offline';
    $('#conn').className = 'conn off';
  });
  socket.on('connect_error', (err) => {
    if (err.message === 'AUTH_REQUIRED') {
      sessionStorage.removeItem('carewatch.login');
      location.reload();
    }
  });
  socket.on('snapshot', (list) => {
    alerts.clear();
    for (const a of list) alerts.set(a.id, a);
    render();
  });
  socket.on('alert', upsert);
}

$('#login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  $('#login-error').textContent = '';
  const res = await fetch('/api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: form.get('username'), password: form.get('password') }),
  });
  const body = await res.json();
  if (!res.ok) {
    $('#login-error').textContent = `登录失败 · Login failed (${body.code})`;
    return;
  }
  sessionStorage.setItem('carewatch.login', JSON.stringify(body));
  connect(body.token, body.user);
});

const saved = sessionStorage.getItem('carewatch.login');
if (saved) {
  const body = JSON.parse(saved);
  if (body.expiresAt > Date.now()) connect(body.token, body.user);
}
