import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deviceAcl, mosquittoConf, mosquittoFiles, mosquittoPasswordHash, resolveSecrets, serviceAcl } from '../../scripts/mosquitto/files.ts';
import { ROOT } from '../support/process.ts';
import { DEMO_SITE_PATH, demoRegistry } from '../support/registry.ts';

/** The pure half of scripts/mosquitto-config.ts; test/deploy/mosquitto.test.ts runs Mosquitto on its output. */
const registry = demoRegistry();
const opts = { devices: { host: '0.0.0.0', port: 1883 }, services: { host: '127.0.0.1', port: 1884 }, dir: '/etc/cw', dataDir: '/var/lib/cw', source: 'site.json' };

/** The `user` sections of an ACL file: user → its topic lines. */
function sections(acl: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of acl.split('\n')) {
    if (line.startsWith('user ')) out.set(line.slice(5), (current = []));
    else if (line.startsWith('topic ')) {
      if (current === undefined) throw new Error(`topic line before any user: ${line}`);
      current.push(line);
    }
  }
  return out;
}

describe('Mosquitto files from the registry', () => {
  it("hashes exactly as mosquitto_passwd does (PBKDF2-SHA512, $7$)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-mosq-pw-'));
    try {
      const file = join(dir, 'pw');
      const r = spawnSync('mosquitto_passwd', ['-b', '-c', file, 'h01-sd-r101', 'a-secret-of-the-device'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const line = readFileSync(file, 'utf8').trim();
      const hash = line.slice('h01-sd-r101:'.length);
      const salt = Buffer.from(hash.split('$')[3] ?? '', 'base64');
      expect(salt.length).toBe(12);
      expect(mosquittoPasswordHash('a-secret-of-the-device', salt)).toBe(hash);
      expect(mosquittoPasswordHash('another-secret', salt)).not.toBe(hash);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets each device write only its own telemetry, event and status, and read only its own command topic', () => {
    const acl = sections(deviceAcl(registry));
    expect(acl.size).toBe(registry.site.devices.length);
    expect(acl.get('h01-sd-r101')).toEqual([
      'topic write carewatch/v1/h01/h01-sd-r101/telemetry',
      'topic write carewatch/v1/h01/h01-sd-r101/event',
      'topic write carewatch/v1/h01/h01-sd-r101/status',
      'topic read carewatch/v1/h01/h01-sd-r101/command',
    ]);
    for (const d of registry.site.devices) {
      for (const line of acl.get(d.id) ?? []) {
        expect(line).not.toMatch(/[+#]/);
        expect(line).toContain(`/${d.homeId}/${d.id}/`);
      }
    }
  });

  it("gives services today's grants: ingest reads, alerts also writes its homes' alerts and incidents and their devices' commands", () => {
    const acl = sections(serviceAcl(registry));
    expect(acl.get('svc-ingest')).toEqual(['topic read carewatch/v1/+/+/telemetry', 'topic read carewatch/v1/+/+/event', 'topic read carewatch/v1/+/+/status']);
    const alerts = acl.get('svc-alerts') ?? [];
    expect(alerts).toContain('topic write carewatch/v1/h09/alerts');
    expect(alerts).toContain('topic write carewatch/v1/h09/incidents');
    expect(alerts).toContain('topic write carewatch/v1/h01/h01-sd-r101/command');
    expect(alerts.filter((l) => l.startsWith('topic write')).length).toBe(2 * registry.site.homes.length + registry.site.devices.length);
    expect(alerts.filter((l) => l.startsWith('topic write')).every((l) => !/[+#]/.test(l))).toBe(true);
    expect(acl.get('svc-integration')).toEqual(['topic read carewatch/v1/+/alerts', 'topic read carewatch/v1/+/incidents']);
  });

  it('writes hashes, never the secrets, and one line per account on each listener', async () => {
    const { secrets, problems } = await resolveSecrets(registry, {}, true);
    expect(problems).toEqual([]);
    const files = mosquittoFiles(registry, secrets, opts);
    const devices = files['devices.passwd'].trim().split('\n');
    expect(devices.length).toBe(registry.site.devices.length);
    expect(files['services.passwd'].trim().split('\n').map((l) => l.split(':')[0])).toEqual(registry.site.services.map((s) => s.id));
    expect(devices.every((l) => /^[A-Za-z0-9_-]+:\$7\$101\$[A-Za-z0-9+/=]{16}\$[A-Za-z0-9+/=]{88}$/.test(l))).toBe(true);
    expect(files['devices.passwd']).not.toContain('demo-');
  });

  it('refuses accounts without a secret, with a wrong one, and ids the registry does not know', async () => {
    const r = await resolveSecrets(registry, { 'h01-sd-r101': 'demo-h01-sd-r101', 'h01-sd-r102': 'wrong', 'no-such-device': 'x' }, false);
    expect(r.secrets.get('h01-sd-r101')).toBe('demo-h01-sd-r101');
    expect(r.problems).toContain("h01-sd-r102: the secret given does not match the registry's hash");
    expect(r.problems).toContain('no-such-device: not a device or service account of the registry');
    expect(r.problems).toContain('h01-sd-r103: no secret given (a demo account: --demo-secrets)');
    expect(r.problems.length).toBe(registry.site.devices.length + registry.site.services.length - 1 + 1);
  });

  it('puts devices and services on separate listeners; only the device listener ties the client id to the username', () => {
    const conf = mosquittoConf(opts);
    const [global = '', devices = '', services = ''] = conf.split(/\n(?=listener )/);
    expect(global).toContain('per_listener_settings true');
    expect(global).toContain('max_queued_messages 0');
    expect(devices).toMatch(/^listener 1883 0\.0\.0\.0\n/);
    expect(devices).toContain('use_username_as_clientid true');
    expect(devices).toContain('password_file /etc/cw/devices.passwd');
    expect(devices).toContain('acl_file /etc/cw/devices.acl');
    expect(services).toMatch(/^listener 1884 127\.0\.0\.1\n/);
    expect(services).not.toContain('use_username_as_clientid');
    expect(services).toContain('acl_file /etc/cw/services.acl');
    for (const part of [devices, services]) expect(part).toContain('allow_anonymous false');
  });

  it('the script writes nothing and exits 1 when secrets are missing, and the password files 0600 when all are there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-mosq-cli-'));
    try {
      const run = (...extra: string[]) =>
        spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/mosquitto-config.ts'), '--registry', DEMO_SITE_PATH, '--out', join(dir, 'out'), ...extra], { cwd: ROOT, encoding: 'utf8' });
      const refused = run();
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('nothing written');
      expect(refused.stderr).toContain('svc-ingest: no secret given (a demo account: --demo-secrets)');
      expect(readdirSync(dir)).toEqual([]);
      const ok = run('--demo-secrets');
      expect(ok.status, ok.stderr).toBe(0);
      expect(readdirSync(join(dir, 'out')).sort()).toEqual(['data', 'devices.acl', 'devices.passwd', 'mosquitto.conf', 'services.acl', 'services.passwd']);
      for (const f of ['devices.passwd', 'services.passwd']) expect(statSync(join(dir, 'out', f)).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
