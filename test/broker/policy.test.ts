import { describe, expect, it } from 'vitest';
import { hashSecret, DEVICE_COST } from '../../common/secrets.ts';
import { indexRegistry } from '../../contract/registry-index.ts';
import type { Device, SiteRegistry } from '../../contract/registry.ts';
import { FILTERS, alertsTopic, deviceCommandTopic, deviceTopic } from '../../contract/topics.ts';
import { MAX_DEVICE_PAYLOAD_BYTES } from '../../contract/payloads.ts';
import { authorizePublish, authorizeSubscribe, checkConnect, mayReceive, type Identity, type PolicyContext } from '../../broker/policy.ts';
import { demoRegistry, demoSecret } from '../support/registry.ts';

const registry = demoRegistry();
const demo: PolicyContext = { registry, production: false };
const prod: PolicyContext = { registry, production: true };
const dev = registry.site.devices[0] as Device;
const other = registry.site.devices[1] as Device;
const otherHome = registry.site.devices.find((d) => d.homeId !== dev.homeId);
if (otherHome === undefined) throw new Error('demo site has one home');

function identityOf(username: string, clientId = username): Identity {
  const r = checkConnect(demo, { clientId, username, password: demoSecret(username), protocolVersion: 4 });
  if (!r.ok) throw new Error(r.reason);
  return r.identity;
}

const salt = Buffer.alloc(16, 7);
/** A site with one non-demo device and one non-demo service, for production-mode rules. */
function productionSite(): PolicyContext {
  const site = structuredClone(registry.site) as SiteRegistry;
  site.devices.push({ id: 'prod-dev-1', homeId: dev.homeId, roomId: dev.roomId, kind: 'heat_detector', secretHash: hashSecret('s3cret-dev', DEVICE_COST, salt) });
  site.services.push({ id: 'svc-prod', role: 'ingest', secretHash: hashSecret('s3cret-svc', DEVICE_COST, salt) });
  return { registry: indexRegistry(site), production: true };
}

describe('checkConnect', () => {
  it('accepts a device whose client id equals its username and returns the hash to verify', () => {
    const r = checkConnect(demo, { clientId: dev.id, username: dev.id, password: Buffer.from(demoSecret(dev.id)), protocolVersion: 4 });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.secretHash).toBe(dev.secretHash);
      expect(r.password).toBe(demoSecret(dev.id));
      expect(r.identity.kind).toBe('device');
    }
  });

  it('requires a username and a password', () => {
    expect(checkConnect(demo, { clientId: dev.id, username: undefined, password: 'x', protocolVersion: 4 })).toMatchObject({ ok: false, code: 'BROKER_NO_CREDENTIALS', returnCode: 4 });
    expect(checkConnect(demo, { clientId: dev.id, username: dev.id, password: undefined, protocolVersion: 4 })).toMatchObject({ ok: false, code: 'BROKER_NO_CREDENTIALS' });
  });

  it('refuses an unknown account', () => {
    expect(checkConnect(demo, { clientId: 'nobody', username: 'nobody', password: 'x', protocolVersion: 4 })).toMatchObject({ ok: false, code: 'BROKER_UNKNOWN_ACCOUNT', returnCode: 4 });
  });

  it('refuses protocol levels other than MQTT 3.1.1', () => {
    expect(checkConnect(demo, { clientId: dev.id, username: dev.id, password: 'x', protocolVersion: 3 })).toMatchObject({ ok: false, code: 'BROKER_PROTOCOL_VERSION' });
    expect(checkConnect(demo, { clientId: dev.id, username: dev.id, password: 'x', protocolVersion: 5 })).toMatchObject({ ok: false, code: 'BROKER_PROTOCOL_VERSION' });
  });

  it('requires a device client id to equal the username [MQTT-3.1.3]', () => {
    expect(checkConnect(demo, { clientId: `${dev.id}-2`, username: dev.id, password: 'x', protocolVersion: 4 })).toMatchObject({ ok: false, code: 'BROKER_CLIENT_ID_MISMATCH', returnCode: 2 });
    expect(checkConnect(demo, { clientId: other.id, username: dev.id, password: 'x', protocolVersion: 4 })).toMatchObject({ code: 'BROKER_CLIENT_ID_MISMATCH' });
  });

  it('lets a service use "<username>-suffix" client ids but not another prefix', () => {
    expect(checkConnect(demo, { clientId: 'svc-ingest-1', username: 'svc-ingest', password: 'x', protocolVersion: 4 }).ok).toBe(true);
    expect(checkConnect(demo, { clientId: 'svc-ingest', username: 'svc-ingest', password: 'x', protocolVersion: 4 }).ok).toBe(true);
    expect(checkConnect(demo, { clientId: 'svc-ingestX', username: 'svc-ingest', password: 'x', protocolVersion: 4 })).toMatchObject({ code: 'BROKER_CLIENT_ID_MISMATCH' });
    expect(checkConnect(demo, { clientId: 'svc-alerts-1', username: 'svc-ingest', password: 'x', protocolVersion: 4 })).toMatchObject({ code: 'BROKER_CLIENT_ID_MISMATCH' });
  });

  it('in production refuses demoSecret entries and any demo- password, and accepts real secrets', () => {
    expect(checkConnect(prod, { clientId: dev.id, username: dev.id, password: demoSecret(dev.id), protocolVersion: 4 })).toMatchObject({ ok: false, code: 'BROKER_DEMO_SECRET_IN_PRODUCTION', returnCode: 5 });
    expect(checkConnect(prod, { clientId: 'svc-ingest', username: 'svc-ingest', password: 'not-demo', protocolVersion: 4 })).toMatchObject({ code: 'BROKER_DEMO_SECRET_IN_PRODUCTION' });
    const site = productionSite();
    expect(checkConnect(site, { clientId: 'prod-dev-1', username: 'prod-dev-1', password: 'demo-prod-dev-1', protocolVersion: 4 })).toMatchObject({ code: 'BROKER_DEMO_SECRET_IN_PRODUCTION' });
    expect(checkConnect(site, { clientId: 'prod-dev-1', username: 'prod-dev-1', password: 's3cret-dev', protocolVersion: 4 }).ok).toBe(true);
    expect(checkConnect(site, { clientId: 'svc-prod-a', username: 'svc-prod', password: 's3cret-svc', protocolVersion: 4 }).ok).toBe(true);
    // Outside production the same demo entry is fine.
    expect(checkConnect(demo, { clientId: dev.id, username: dev.id, password: demoSecret(dev.id), protocolVersion: 4 }).ok).toBe(true);
  });

  it('allows a will only on the device own status topic', () => {
    const own = checkConnect(demo, { clientId: dev.id, username: dev.id, password: 'x', protocolVersion: 4, will: { topic: deviceTopic(dev.homeId, dev.id, 'status') } });
    const foreign = checkConnect(demo, { clientId: dev.id, username: dev.id, password: 'x', protocolVersion: 4, will: { topic: deviceTopic(other.homeId, other.id, 'status') } });
    const telemetry = checkConnect(demo, { clientId: dev.id, username: dev.id, password: 'x', protocolVersion: 4, will: { topic: deviceTopic(dev.homeId, dev.id, 'telemetry') } });
    const service = checkConnect(demo, { clientId: 'svc-alerts', username: 'svc-alerts', password: 'x', protocolVersion: 4, will: { topic: alertsTopic(dev.homeId) } });
    expect([own, foreign, telemetry, service].map((r) => r.ok && r.willAllowed)).toEqual([true, false, false, false]);
  });
});

describe('authorizePublish', () => {
  const device = identityOf(dev.id);
  const small = { payloadBytes: 100, retain: false };

  it('lets a device publish telemetry, event and retained status under its own home and id', () => {
    for (const ch of ['telemetry', 'event'] as const) expect(authorizePublish(demo, device, { topic: deviceTopic(dev.homeId, dev.id, ch), ...small }).ok).toBe(true);
    expect(authorizePublish(demo, device, { topic: deviceTopic(dev.homeId, dev.id, 'status'), payloadBytes: 50, retain: true }).ok).toBe(true);
  });

  it('refuses a device publishing under another device, another home, its command topic or alerts', () => {
    expect(authorizePublish(demo, device, { topic: deviceTopic(other.homeId, other.id, 'telemetry'), ...small })).toMatchObject({ ok: false, code: 'BROKER_PUBLISH_DENIED' });
    expect(authorizePublish(demo, device, { topic: deviceTopic(otherHome.homeId, dev.id, 'telemetry'), ...small })).toMatchObject({ code: 'BROKER_PUBLISH_DENIED' });
    expect(authorizePublish(demo, device, { topic: deviceCommandTopic(dev.homeId, dev.id), ...small })).toMatchObject({ code: 'BROKER_PUBLISH_DENIED' });
    expect(authorizePublish(demo, device, { topic: alertsTopic(dev.homeId), ...small })).toMatchObject({ code: 'BROKER_PUBLISH_DENIED' });
  });

  it('refuses $SYS, wildcards and topics outside protocol v1', () => {
    expect(authorizePublish(demo, device, { topic: '$SYS/x', ...small })).toMatchObject({ code: 'BROKER_SYS_TOPIC' });
    expect(authorizePublish(demo, device, { topic: `carewatch/v1/${dev.homeId}/+/telemetry`, ...small })).toMatchObject({ code: 'BROKER_WILDCARD_IN_PUBLISH' });
    expect(authorizePublish(demo, device, { topic: `carewatch/v2/${dev.homeId}/${dev.id}/telemetry`, ...small })).toMatchObject({ code: 'BROKER_NOT_V1_TOPIC' });
    expect(authorizePublish(demo, identityOf('svc-alerts'), { topic: 'other/thing', ...small })).toMatchObject({ code: 'BROKER_NOT_V1_TOPIC' });
  });

  it('holds a device to MAX_DEVICE_PAYLOAD_BYTES', () => {
    const topic = deviceTopic(dev.homeId, dev.id, 'telemetry');
    expect(authorizePublish(demo, device, { topic, payloadBytes: MAX_DEVICE_PAYLOAD_BYTES, retain: false }).ok).toBe(true);
    expect(authorizePublish(demo, device, { topic, payloadBytes: MAX_DEVICE_PAYLOAD_BYTES + 1, retain: false })).toMatchObject({ code: 'BROKER_PAYLOAD_TOO_LARGE' });
  });

  it('refuses retained telemetry and events (a retained call point would re-raise on every restart)', () => {
    expect(authorizePublish(demo, device, { topic: deviceTopic(dev.homeId, dev.id, 'event'), payloadBytes: 10, retain: true })).toMatchObject({ code: 'BROKER_RETAIN_DENIED' });
  });

  it('lets svc-alerts publish alerts and device commands of registered homes and devices only', () => {
    const alerts = identityOf('svc-alerts', 'svc-alerts-1');
    expect(authorizePublish(demo, alerts, { topic: alertsTopic(dev.homeId), ...small }).ok).toBe(true);
    expect(authorizePublish(demo, alerts, { topic: deviceCommandTopic(dev.homeId, dev.id), ...small }).ok).toBe(true);
    expect(authorizePublish(demo, alerts, { topic: alertsTopic('h99'), ...small })).toMatchObject({ code: 'BROKER_PUBLISH_DENIED' });
    expect(authorizePublish(demo, alerts, { topic: deviceCommandTopic(otherHome.homeId, dev.id), ...small })).toMatchObject({ code: 'BROKER_PUBLISH_DENIED' });
    expect(authorizePublish(demo, alerts, { topic: deviceTopic(dev.homeId, dev.id, 'telemetry'), ...small })).toMatchObject({ code: 'BROKER_PUBLISH_DENIED' });
  });

  it('lets ingest, integration and simulator publish nothing', () => {
    for (const svc of ['svc-ingest', 'svc-integration', 'svc-simulator']) {
      const id = identityOf(svc);
      expect(authorizePublish(demo, id, { topic: alertsTopic(dev.homeId), ...small })).toMatchObject({ code: 'BROKER_PUBLISH_DENIED' });
      expect(authorizePublish(demo, id, { topic: deviceTopic(dev.homeId, dev.id, 'telemetry'), ...small })).toMatchObject({ code: 'BROKER_PUBLISH_DENIED' });
    }
  });
});

describe('authorizeSubscribe and mayReceive', () => {
  it('lets a device subscribe to its own command topic only', () => {
    const device = identityOf(dev.id);
    expect(authorizeSubscribe(demo, device, deviceCommandTopic(dev.homeId, dev.id)).ok).toBe(true);
    for (const f of [deviceCommandTopic(other.homeId, other.id), deviceTopic(other.homeId, other.id, 'telemetry'), `carewatch/v1/${dev.homeId}/+/command`, '#', FILTERS.status]) {
      expect(authorizeSubscribe(demo, device, f)).toMatchObject({ ok: false, code: 'BROKER_SUBSCRIBE_DENIED' });
    }
    expect(mayReceive(device, deviceCommandTopic(dev.homeId, dev.id))).toBe(true);
    expect(mayReceive(device, deviceCommandTopic(other.homeId, other.id))).toBe(false);
  });

  it('grants ingest and alerts the telemetry/event/status filters and narrower ones, nothing wider', () => {
    for (const svc of ['svc-ingest', 'svc-alerts']) {
      const id = identityOf(svc);
      for (const f of [FILTERS.telemetry, FILTERS.event, FILTERS.status, `carewatch/v1/${dev.homeId}/+/telemetry`, deviceTopic(dev.homeId, dev.id, 'status')]) {
        expect(authorizeSubscribe(demo, id, f).ok).toBe(true);
      }
      for (const f of [FILTERS.everything, '#', 'carewatch/v1/+/+/+', FILTERS.alerts, 'carewatch/v1/+/+/command', 'carewatch/v1/+/#']) {
        expect(authorizeSubscribe(demo, id, f)).toMatchObject({ ok: false });
      }
      expect(mayReceive(id, deviceTopic(dev.homeId, dev.id, 'telemetry'))).toBe(true);
      expect(mayReceive(id, deviceCommandTopic(dev.homeId, dev.id))).toBe(false);
    }
  });

  it('grants integration and simulator the alerts topics only', () => {
    for (const svc of ['svc-integration', 'svc-simulator']) {
      const id = identityOf(svc);
      expect(authorizeSubscribe(demo, id, FILTERS.alerts).ok).toBe(true);
      expect(authorizeSubscribe(demo, id, alertsTopic(dev.homeId)).ok).toBe(true);
      expect(authorizeSubscribe(demo, id, FILTERS.telemetry)).toMatchObject({ ok: false });
      expect(mayReceive(id, alertsTopic(dev.homeId))).toBe(true);
      expect(mayReceive(id, deviceTopic(dev.homeId, dev.id, 'status'))).toBe(false);
    }
  });

  it('refuses $SYS and malformed filters', () => {
    const id = identityOf('svc-ingest');
    expect(authorizeSubscribe(demo, id, '$SYS/#')).toMatchObject({ code: 'BROKER_SYS_TOPIC' });
    expect(authorizeSubscribe(demo, id, 'carewatch/v1/#/status')).toMatchObject({ code: 'BROKER_SUBSCRIBE_DENIED' });
  });
});
