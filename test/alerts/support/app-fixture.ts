import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createManualClock } from '../../../common/clock.ts';
import { buildApp } from '../../../alerts/http/app.ts';
import type { LoginLimits } from '../../../alerts/http/auth-routes.ts';
import { createTokenService } from '../../../alerts/http/token.ts';
import { createLifecycle, type AlertChange } from '../../../alerts/lifecycle.ts';
import type { CareActionInput } from '../../../alerts/care-action.ts';
import { demoRegistry } from '../../support/registry.ts';

export const DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboards/app', import.meta.url));

/** The HTTP app over a real lifecycle, without sockets or storage: for app.inject tests. */
export function appFixture(opts: { production?: boolean; loginLimits?: Partial<LoginLimits> } = {}) {
  const registry = demoRegistry();
  const clock = createManualClock();
  const changes: AlertChange[] = [];
  const careActions: CareActionInput[] = [];
  let n = 0;
  const lifecycle = createLifecycle({ clock, registry, onChange: (c) => changes.push(c), newId: () => `a${++n}` });
  const app = buildApp({
    registry,
    lifecycle,
    tokens: createTokenService('test-secret-test-secret-test-secret!', 3600),
    clock,
    logger: pino({ level: 'silent' }),
    production: opts.production === true,
    dashboardDir: DASHBOARD_DIR,
    onCareAction: (a) => careActions.push(a),
    ...(opts.loginLimits !== undefined ? { loginLimits: opts.loginLimits } : {}),
  });
  async function login(username: string, password = `demo-${username}`): Promise<string> {
    const res = await app.inject({ method: 'POST', url: '/api/login', payload: { username, password } });
    if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
    return (res.json() as { token: string }).token;
  }
  return { app, lifecycle, clock, changes, careActions, login, registry };
}
