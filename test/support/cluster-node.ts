import { DEMO_SITE_PATH } from './registry.ts';

/**
 * A broker cluster node as docs/scaling.md runs it (`broker/main.ts` with the cluster variables),
 * for the tests that start nodes as separate processes: the environment of one node, and a sample of
 * a node's GET /metrics.
 */
export function clusterNodeEnv(o: { nodeId: string; redisUrl: string; port: number; wsPort: number; httpPort: number; heartbeatMs: number }): Record<string, string> {
  return {
    CAREWATCH_REGISTRY: DEMO_SITE_PATH,
    CAREWATCH_BROKER_PORT: String(o.port),
    CAREWATCH_BROKER_WS_PORT: String(o.wsPort),
    CAREWATCH_BROKER_HTTP_PORT: String(o.httpPort),
    CAREWATCH_BROKER_REDIS_URL: `${o.redisUrl}/0`,
    CAREWATCH_BROKER_CLUSTER: 'redis',
    CAREWATCH_BROKER_NODE_ID: o.nodeId,
    CAREWATCH_BROKER_HEARTBEAT_MS: String(o.heartbeatMs),
    CAREWATCH_LOG_LEVEL: 'warn',
  };
}

/** The value of `carewatch_<name>` (any labels) on the node serving /metrics at `httpPort`. */
export async function nodeMetric(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const m = new RegExp(`^carewatch_${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
  if (!m) throw new Error(`no carewatch_${name} in the metrics of the node at ${httpPort}`);
  return Number(m[1]);
}
