import { describe, expect, it } from 'vitest';
import { plan } from '../../bench/connections100k.ts';
import { haproxyConfig } from '../support/haproxy.ts';

/**
 * The layout the descriptor limit forces on the 100,000-connection benchmark (bench/README.md
 * "connections100k"): enough nodes that the survivors of a kill still hold every device, several
 * HAProxy processes (2 descriptors per proxied connection), Mosquitto side by side only as far as
 * one process can go.
 */
describe('connections100k plan', () => {
  it('spreads 100,000 devices over 7 nodes and 12 HAProxy under a 20,000-descriptor limit', () => {
    const p = plan({ fdLimit: 20_000, quick: false });
    expect(p).toEqual({ devices: 100_000, homes: 1_000, nodes: 7, groups: 12, rate: 7_000, sideBySide: 19_000 });
    // After one node dies every survivor stays under the limit less the node's own descriptors.
    expect(Math.ceil(p.devices / (p.nodes - 1))).toBeLessThanOrEqual(19_000);
  });

  it('refuses a node count whose survivors could not hold the devices, naming the count that works', () => {
    expect(() => plan({ devices: 100_000, nodes: 6, fdLimit: 20_000, quick: false })).toThrow(/--nodes 7/);
    expect(plan({ devices: 100_000, nodes: 8, fdLimit: 20_000, quick: false }).nodes).toBe(8);
  });

  it('keeps two groups and two nodes at a small size, and never less than one message a minute per device', () => {
    const small = plan({ devices: 5_000, fdLimit: 20_000, quick: true, rate: 10 });
    expect(small).toMatchObject({ nodes: 2, groups: 2, sideBySide: 5_000, homes: 50 });
    expect(small.rate).toBe(Math.ceil(5_000 / 60));
  });

  it('keeps the one-process comparison inside the ephemeral ports one address has for one destination', () => {
    // Devices connect without binding a source address: one 4-tuple each to one port.
    const roomy = plan({ fdLimit: 1_048_576, quick: false, ephemeralPorts: 28_232 });
    expect(roomy.sideBySide).toBe(Math.floor(28_232 * 0.9));
    expect(plan({ fdLimit: 20_000, quick: false, ephemeralPorts: 28_232 }).sideBySide).toBe(19_000);
  });

  it('caps HAProxy connections inside its descriptor limit when asked', () => {
    const cfg = haproxyConfig(1883, [{ name: 'a', port: 1 }], { maxconn: 9_500 });
    expect(cfg.split('\n').slice(0, 4)).toContain('  maxconn 9500');
    expect(haproxyConfig(1883, [{ name: 'a', port: 1 }])).not.toContain('maxconn');
  });
});
