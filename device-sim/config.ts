import { Type } from '@sinclair/typebox';

/** Environment of the simulator process (read once by main.ts through common/config.ts loadConfig). */
export const SimEnv = Type.Object({
  registry: Type.String({ minLength: 1, default: 'config/demo-site.json', description: 'path to the site registry JSON' }),
  mqttUrl: Type.String({ pattern: '^(mqtts?|wss?|tcp)://', default: 'mqtt://127.0.0.1:1883', description: 'broker URL such as mqtt://127.0.0.1:1883' }),
  simHomes: Type.Optional(
    Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(,[A-Za-z0-9][A-Za-z0-9_-]{0,63})*$', description: 'comma-separated home ids such as h01,h02 (default: every home)' }),
  ),
  simSpeed: Type.Number({ exclusiveMinimum: 0, maximum: 10000, default: 1, description: 'scenario time factor, a number > 0 (10 = ten times faster)' }),
  simControlPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8090, description: 'control API port 0..65535 (0 = any free port)' }),
  simSeed: Type.Integer({ minimum: 0, maximum: 4294967295, default: 1, description: 'integer seed 0..4294967295' }),
  simSpontaneous: Type.Boolean({ default: true, description: 'true/false: let wet episodes happen by themselves' }),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
});
