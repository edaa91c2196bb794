import { StartupProblem, runProcess } from '../common/process-main.ts';
import { SimEnv } from './config.ts';
import { createSimulator } from './simulator.ts';

/** Composition root of the device simulator: `node dist/device-sim/main.js` (production build) or `node --import tsx device-sim/main.ts`. */
const code = await runProcess({
  name: 'device-sim',
  schema: SimEnv,
  env: process.env,
  registryPath: (env) => env.registry,
  logLevel: (env) => env.logLevel,
  build: ({ config: env, registry, logger }) => {
    const homes = env.simHomes?.split(',');
    const unknown = homes?.filter((h) => registry.home(h) === undefined) ?? [];
    if (unknown.length > 0) throw new StartupProblem(`CAREWATCH_SIM_HOMES names homes not in the registry: ${unknown.join(', ')}`);
    return createSimulator({
      config: {
        mqttUrl: env.mqttUrl,
        ...(homes !== undefined ? { homes } : {}),
        speed: env.simSpeed,
        seed: env.simSeed,
        controlPort: env.simControlPort,
        spontaneous: env.simSpontaneous,
      },
      registry,
      logger,
    });
  },
  started: (sim, env) => `device-sim: ${sim.devices().length} devices connected to ${env.mqttUrl}; control API ${sim.controlUrl() ?? '(none)'}`,
});
process.exit(code);
