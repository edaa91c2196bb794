import { describe, expect, it } from 'vitest';
import { CliUsageError, parseCliArgs } from '../../device-sim/cli-args.ts';

describe('simulator CLI arguments', () => {
  it('maps commands to control API requests', () => {
    expect(parseCliArgs(['fire', 'h01', 'r101'])).toEqual({ method: 'POST', path: '/scenario', body: { name: 'fire', target: 'h01/r101', options: {} } });
    expect(parseCliArgs(['fire', 'h01', 'r101', 'smouldering']).body).toEqual({ name: 'fire', target: 'h01/r101', options: { kind: 'smouldering' } });
    expect(parseCliArgs(['offline', 'h01-sd-r101']).body).toEqual({ name: 'offline', target: 'h01-sd-r101', options: {} });
    expect(parseCliArgs(['online', 'h01-sd-r101'])).toEqual({ method: 'POST', path: '/online', body: { deviceId: 'h01-sd-r101' } });
    expect(parseCliArgs(['desaturation', 'h01-p01']).body).toEqual({ name: 'desaturation', target: 'h01-p01', options: {} });
    expect(parseCliArgs(['bed-exit', 'h01-p03', '--return-after', '90']).body).toEqual({ name: 'bed-exit', target: 'h01-p03', options: { returnAfterMs: 90_000 } });
    expect(parseCliArgs(['hover', 'h01-vs-p01', '--opt', 'metric=spo2_pct', '--opt', 'level=90']).body).toEqual({ name: 'hover', target: 'h01-vs-p01', options: { metric: 'spo2_pct', level: 90 } });
    expect(parseCliArgs(['gas-leak', 'h01', 'kitchen']).body).toMatchObject({ target: 'h01/kitchen' });
    expect(parseCliArgs(['call', 'h01-p01']).body).toEqual({ name: 'call', target: 'h01-p01', options: {} });
    expect(parseCliArgs(['call', 'h01', 'f1-bath']).body).toEqual({ name: 'call', target: 'h01/f1-bath', options: {} });
    expect(parseCliArgs(['list', '--url', 'http://127.0.0.1:9999/'])).toEqual({ method: 'GET', path: '/devices', url: 'http://127.0.0.1:9999' });
    expect(parseCliArgs(['clear', 'h01/r101'])).toEqual({ method: 'DELETE', path: '/scenario/h01%2Fr101' });
  });

  it.each([[[]], [['meteor', 'h01']], [['fire', 'h01']], [['fire', 'h01', 'r101', 'wet']], [['offline']], [['offline', 'a/b']], [['list', 'extra']], [['bed-exit', 'h01-p03', '--return-after', 'soon']], [['fire', 'h01', 'r101', '--bogus']], [['list', '--url', 'ftp://x']], [['call']], [['call', 'h01', 'r101', 'x']]])(
    'refuses %j with the usage text',
    (argv) => {
      expect(() => parseCliArgs(argv)).toThrow(CliUsageError);
      try {
        parseCliArgs(argv);
      } catch (err) {
        expect((err as Error).message).toContain('usage: node --import tsx device-sim/cli.ts');
      }
    },
  );
});
