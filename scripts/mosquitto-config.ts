/**
 * Writes Mosquitto 2.0's configuration for a carewatch site from its registry (docs/broker.md
 * "Mosquitto"):
 *
 *   npm run mosquitto-config -- --registry config/demo-site.json --out .tmp/mosquitto --demo-secrets
 *   npm run mosquitto-config -- --registry site.json --secrets secrets.json --out /etc/carewatch/mosquitto \
 *       --devices 0.0.0.0:1883 --services 10.0.0.5:1884 --data-dir /var/lib/mosquitto --user mosquitto
 *
 * `--secrets`: a JSON object { "<device or service id>": "<secret>" } (what provisioning handed out);
 * every secret is checked against the registry's hash. Only Mosquitto's PBKDF2 hashes are written,
 * never a secret. Exit 1 with every problem listed when an account has no (matching) secret.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadRegistry } from '../common/registry-file.ts';
import { mosquittoFiles, resolveSecrets, type Listener } from './mosquitto/files.ts';

function listener(text: string, name: string): Listener {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || m[1] === undefined || port < 1 || port > 65535) throw new Error(`--${name} must be host:port, got "${text}"`);
  return { host: m[1], port };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      registry: { type: 'string', default: 'config/demo-site.json' },
      out: { type: 'string' },
      secrets: { type: 'string' },
      'demo-secrets': { type: 'boolean', default: false },
      devices: { type: 'string', default: '0.0.0.0:1883' },
      services: { type: 'string', default: '127.0.0.1:1884' },
      'data-dir': { type: 'string' },
      user: { type: 'string' },
    },
    strict: true,
  });
  if (values.out === undefined) throw new Error('--out <directory> is required');
  const dir = resolve(values.out);
  const registry = await loadRegistry(values.registry);
  let given: Record<string, string> = {};
  if (values.secrets !== undefined) {
    const json: unknown = JSON.parse(await readFile(values.secrets, 'utf8'));
    if (typeof json !== 'object' || json === null || Array.isArray(json) || !Object.values(json).every((v) => typeof v === 'string')) {
      throw new Error(`${values.secrets}: expected a JSON object of account id → secret string`);
    }
    given = json as Record<string, string>;
  }
  const { secrets, problems } = await resolveSecrets(registry, given, values['demo-secrets']);
  if (problems.length > 0) {
    console.error(`mosquitto-config: nothing written, ${problems.length} account(s) without a usable secret:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    return 1;
  }
  const dataDir = resolve(values['data-dir'] ?? join(dir, 'data'));
  const files = mosquittoFiles(registry, secrets, {
    devices: listener(values.devices, 'devices'),
    services: listener(values.services, 'services'),
    dir,
    dataDir,
    source: values.registry,
    ...(values.user !== undefined ? { runAs: values.user } : {}),
  });
  await mkdir(dir, { recursive: true });
  await mkdir(dataDir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const path = join(dir, name);
    // Password hashes are for the broker's eyes only.
    await writeFile(path, text, { mode: name.endsWith('.passwd') ? 0o600 : 0o644 });
    if (name.endsWith('.passwd')) await chmod(path, 0o600);
  }
  console.log(`mosquitto-config: wrote ${Object.keys(files).join(', ')} to ${dir} (${registry.site.devices.length} devices, ${registry.site.services.length} service accounts)`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`mosquitto-config: ${(err as Error).message}`);
    process.exit(1);
  },
);
