import { describe, expect, it } from 'vitest';
import { notifyConfigProblems, routedChannels, parseNotifyConfig } from '../../../alerts/notify/config.ts';
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

  it('the registry refuses a roster for an unknown home or naming an unknown person', () => {
    const site = demoRegistry().site;
    const roster = { homeId: 'h99', timezone: 'Asia/Shanghai', people: [], shifts: [{ id: 's', name: 's', days: [1], start: '08:00', end: '20:00', people: ['ghost'] }], directors: [] };
    expect(registryProblems({ ...site, rosters: [roster] })).toEqual(['roster: unknown home "h99"', 'roster "h99" shift "s": unknown person "ghost"']);
  });
});
