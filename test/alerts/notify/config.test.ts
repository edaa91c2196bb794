import { describe, expect, it } from 'vitest';
import { DEFAULT_REPEAT_S, notifyConfigProblems, routedChannels, routesAt, parseNotifyConfig, uncoveredHomes } from '../../../alerts/notify/config.ts';
import { registryProblems } from '../../../contract/registry-index.ts';
import { demoRegistry } from '../../support/registry.ts';

/** Issue 15: routing is configuration, validated at start with the offending key named. */

const good = {
  baseUrl: 'https://cw.example.cn',
  channels: [
    { id: 'hook', type: 'webhook', url: 'https://hooks.example.cn/cw', secret: 'sixteen-chars-secret' },
    { id: 'wecom', type: 'wecom', url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc', homes: ['h01'] },
    { id: 'ding', type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=t', secret: 'SECxyz', homes: ['h01'] },
    { id: 'sms', type: 'sms', url: 'https://sms.example.cn/send', bodyTemplate: '{"to":"{{to}}","text":"{{text}}"}' },
  ],
  routes: [
    { severities: ['critical', 'high'], level: 0, channels: ['wecom', 'sms'] },
    { severities: ['critical'], level: 1, channels: ['ding', 'sms'] },
    { severities: ['critical'], level: 2, channels: ['hook'] },
  ],
};

describe('notify config', () => {
  it('accepts a valid config and routes by severity and level', () => {
    expect(notifyConfigProblems(good)).toEqual([]);
    const c = parseNotifyConfig(good);
    expect(routedChannels(c, 'critical', 0)).toEqual(['wecom', 'sms']);
    expect(routedChannels(c, 'high', 1)).toEqual([]);
    expect(routedChannels(c, 'critical', 2)).toEqual(['hook']);
  });

  it('names the bad key', () => {
    expect(notifyConfigProblems({ ...good, routes: [...good.routes, { severities: ['low'], level: 0, channels: ['fax'] }] })).toEqual(['notify config /routes/3/channels: unknown channel fax']);
    expect(notifyConfigProblems({ ...good, channels: [...good.channels, good.channels[0]] })).toEqual(['notify config: channel hook is defined twice']);
    expect(notifyConfigProblems({ ...good, routes: good.routes.slice(1) })).toEqual(['notify config /routes: no route sends critical alarms to the staff on duty (level 0)']);
    expect(notifyConfigProblems({ ...good, routes: [{ ...good.routes[0], level: 3 }] }).join()).toContain('/routes/0/level');
    expect(notifyConfigProblems({ ...good, channels: [{ ...good.channels[0], secret: 'short' }] }).join()).toContain('/channels/0');
    expect(() => parseNotifyConfig({ ...good, baseUrl: 'ftp://x' })).toThrow(/baseUrl/);
  });

  it('refuses an unscoped group robot below the bureau level; accepts it scoped (channel or route) or at the bureau', () => {
    const unscoped = { ...good, channels: good.channels.map((c) => (c.id === 'wecom' ? { id: 'wecom', type: 'wecom', url: c.url } : c)) };
    expect(notifyConfigProblems(unscoped)).toEqual([
      'notify config /routes/0: group robot wecom at level 0 has no "homes" or "providers": it would post every home\'s alarms into one chat group; scope the channel or the route (unscoped group robots only at level 2, the bureau)',
    ]);
    const routeScoped = { ...unscoped, routes: [{ ...good.routes[0], homes: ['h01'] }, ...good.routes.slice(1)] };
    expect(notifyConfigProblems(routeScoped)).toEqual([]);
    const atBureau = { ...unscoped, routes: [{ ...good.routes[0], channels: ['sms'] }, good.routes[1], { ...good.routes[2], channels: ['hook', 'wecom'] }] };
    expect(notifyConfigProblems(atBureau)).toEqual([]);
    // A personal channel (webhook, SMS) addresses people from the incident's own roster: no scope needed.
    expect(notifyConfigProblems({ ...good, channels: good.channels.filter((c) => c.id !== 'wecom'), routes: [{ ...good.routes[0], channels: ['sms'] }, ...good.routes.slice(1)] })).toEqual([]);
  });

  it('scopes channels and routes to homes and providers; an unscoped personal channel carries every home', () => {
    const c = parseNotifyConfig({
      ...good,
      channels: [...good.channels, { id: 'wecom2', type: 'wecom', url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=def', homes: ['h02'] }, { id: 'pv', type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=p', providers: ['pv01'] }],
      routes: [{ severities: ['critical'], level: 0, channels: ['wecom', 'wecom2', 'pv', 'sms'] }, { severities: ['critical'], level: 1, channels: ['hook'], homes: ['h01'] }],
    });
    expect(routedChannels(c, 'critical', 0, { homeId: 'h01' })).toEqual(['wecom', 'sms']);
    expect(routedChannels(c, 'critical', 0, { homeId: 'h02' })).toEqual(['wecom2', 'sms']);
    expect(routedChannels(c, 'critical', 0, { homeId: 'hh01', providerId: 'pv01' })).toEqual(['pv', 'sms']);
    expect(routedChannels(c, 'critical', 0, { homeId: 'hh09', providerId: 'pv02' })).toEqual(['sms']);
    expect(routedChannels(c, 'critical', 1, { homeId: 'h02' })).toEqual([]);
    expect(routedChannels(c, 'critical', 1, { homeId: 'h01' })).toEqual(['hook']);
    expect(uncoveredHomes({ ...c, routes: [{ severities: ['critical'], level: 0, channels: ['wecom'] }] }, [{ homeId: 'h01' }, { homeId: 'h02' }])).toEqual(['h02']);
  });

  it('repeats by default per severity; repeat: false sends once; the shortest of two routes wins; below 30 s is refused', () => {
    const c = parseNotifyConfig({
      ...good,
      routes: [
        { severities: ['critical', 'low'], level: 0, channels: ['wecom', 'sms'] },
        { severities: ['critical'], level: 0, channels: ['sms'], repeat: { everyS: 60, max: 3 } },
        { severities: ['critical'], level: 1, channels: ['ding'], repeat: false },
      ],
    });
    expect(routesAt(c, 'critical', 0)).toEqual([
      { channel: 'wecom', repeat: { everyS: DEFAULT_REPEAT_S.critical } },
      { channel: 'sms', repeat: { everyS: 60, max: 3 } },
    ]);
    expect(routesAt(c, 'low', 0)[0]?.repeat).toEqual({ everyS: 4 * 3600 });
    expect(routesAt(c, 'critical', 1)).toEqual([{ channel: 'ding' }]);
    expect(notifyConfigProblems({ ...good, routes: [{ ...good.routes[0], repeat: { everyS: 10 } }] }).join()).toContain('/routes/0/repeat');
  });

  it('the registry refuses a roster for an unknown home or naming an unknown person', () => {
    const site = demoRegistry().site;
    const roster = { homeId: 'h99', timezone: 'Asia/Shanghai', people: [], shifts: [{ id: 's', name: 's', days: [1], start: '08:00', end: '20:00', people: ['ghost'] }], directors: [] };
    expect(registryProblems({ ...site, rosters: [roster] })).toEqual(['roster: unknown home "h99"', 'roster "h99" shift "s": unknown person "ghost"']);
  });

  it('the registry refuses a misspelled time zone of a roster or provider (who is on duty would throw at every alarm)', () => {
    const site = demoRegistry().site;
    const rosters = (site.rosters ?? []).map((r) => (r.homeId === 'h01' ? { ...r, timezone: 'Asia/Shangai' } : r));
    const providers = (site.providers ?? []).map((p) => (p.id === 'pv01' ? { ...p, timezone: 'Mars/Olympus' } : p));
    expect(registryProblems({ ...site, rosters, providers })).toEqual(['provider "pv01": unknown time zone "Mars/Olympus"', 'roster "h01": unknown time zone "Asia/Shangai"']);
    expect(registryProblems(site)).toEqual([]);
  });
});
