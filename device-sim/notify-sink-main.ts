import { Type } from '@sinclair/typebox';
import { runProcess } from '../common/process-main.ts';
import { createNotifySink } from './notify-sink.ts';

/**
 * The demo's notification receiver (device-sim/notify-sink.ts): `npm run notify-sink`. Started by
 * `npm start` and by `docker compose --profile demo up`; config/notify-demo.json points at it.
 * The secrets' defaults are the demo's (config/notify-demo.json): a real site has no receiver.
 */
const SinkEnv = Type.Object({
  registry: Type.String({ minLength: 1, default: 'config/demo-site.json', description: 'path to the site registry JSON (to name the recipients)' }),
  sinkHost: Type.String({ minLength: 1, default: '127.0.0.1' }),
  sinkPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8070, description: 'port 0..65535 (0 = any free port)' }),
  sinkWebhookSecret: Type.String({ minLength: 1, default: 'demo-webhook-secret-0123456789', description: "the webhook channels' HMAC secret" }),
  sinkDingtalkSecret: Type.String({ minLength: 1, default: 'demo-SEC-dingtalk-0123456789', description: "the DingTalk robot's 加签 secret" }),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
});

const code = await runProcess({
  name: 'notify-sink',
  schema: SinkEnv,
  env: process.env,
  registryPath: (env) => env.registry,
  logLevel: (env) => env.logLevel,
  build: ({ config, registry, logger }) =>
    createNotifySink({
      config: { host: config.sinkHost, port: config.sinkPort, webhookSecret: config.sinkWebhookSecret, dingtalkSecret: config.sinkDingtalkSecret },
      registry,
      logger,
      print: (text) => process.stdout.write(text),
    }),
  started: (sink) => `notify-sink listening ${sink.url} (GET /messages lists what arrived)`,
});
process.exit(code);
