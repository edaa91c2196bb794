import { createConnection } from 'node:net';
import { MqttClient } from 'mqtt';

/**
 * A real mqtt.js client whose TCP socket leaves from `localAddress` (127.0.0.x are all loopback),
 * so one test process can be an attacker at one address and a device at another. mqtt.js has no
 * localAddress option; its stream builder is the documented seam (MqttClient(streamBuilder, opts)).
 */
export interface Attempt {
  readonly client: MqttClient;
  /** 0 when connected, else the CONNACK return code (or -1 for a closed socket without CONNACK). */
  readonly outcome: Promise<number>;
  /** Set once the outcome is known. */
  settled(): boolean;
}

export function attempt(port: number, localAddress: string, username: string, password: string): Attempt {
  const client = new MqttClient(() => createConnection({ port, host: '127.0.0.1', localAddress }), {
    clientId: username,
    username,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
    // Held refusals are released by the test's manual clock; this only bounds a hang.
    connectTimeout: 120_000,
  });
  let done = false;
  const outcome = new Promise<number>((resolve) => {
    client.once('connect', () => resolve(0));
    client.once('error', (err) => resolve(typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1));
    client.once('close', () => resolve(-1));
  }).finally(() => {
    done = true;
  });
  return { client, outcome, settled: () => done };
}
