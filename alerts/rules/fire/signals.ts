import type { Device } from '../../../contract/registry.ts';
import type { Severity, SignalClass } from '../../../contract/payloads.ts';
import { deviceLabel, type RuleContext, type Signal } from '../types.ts';

/**
 * Signal builders. The three NFPA 72 signal classes are kept apart here, once:
 * - alarm (category `fire`): a fire or a fire hazard; fire alarms latch as a panel latches them;
 * - supervisory (category `fire`): a protection system off-normal (water pressure, electrical
 *   fire monitoring, which GB 50116 / GB 4717 report as 监管报警); self-restoring;
 * - trouble (category `device`): a fault of the monitoring itself; self-restoring.
 */
export interface Text {
  readonly zh: string;
  readonly en: string;
}

interface Common {
  readonly device: Device;
  readonly ctx: RuleContext;
  readonly active: boolean;
  readonly sourceTs: number;
  readonly receivedTs?: number;
  readonly value?: number;
}

function where(device: Device, ctx: RuleContext): Text {
  return deviceLabel(device, ctx);
}

function build(
  rule: string,
  cls: SignalClass,
  severity: Severity,
  c: Common,
  text: Text,
  extra: { latching?: boolean; escalateNow?: boolean; keySuffix?: string },
): Signal {
  const at = where(c.device, c.ctx);
  const state = c.active ? { zh: '', en: '' } : { zh: '（已恢复）', en: ' (cleared)' };
  return {
    key: `${rule}:${c.device.id}${extra.keySuffix ?? ''}`,
    rule,
    category: cls === 'trouble' ? 'device' : 'fire',
    signal: cls,
    severity,
    homeId: c.device.homeId,
    deviceId: c.device.id,
    roomId: c.device.roomId,
    active: c.active,
    sourceTs: c.sourceTs,
    ...(c.receivedTs !== undefined ? { receivedTs: c.receivedTs } : {}),
    ...(c.value !== undefined ? { value: c.value } : {}),
    message: { zh: `${at.zh}：${text.zh}${state.zh}`, en: `${at.en}: ${text.en}${state.en}` },
    ...(extra.latching === true ? { latching: true } : {}),
    ...(extra.escalateNow === true ? { escalateNow: true } : {}),
  };
}

export function alarmSignal(rule: string, severity: Severity, c: Common, text: Text, opts: { latching: boolean; escalateNow?: boolean }): Signal {
  return build(rule, 'alarm', severity, c, text, opts);
}

export function supervisorySignal(rule: string, severity: Severity, c: Common, text: Text): Signal {
  return build(rule, 'supervisory', severity, c, text, {});
}

export function troubleSignal(rule: string, severity: Severity, c: Common, text: Text, keySuffix?: string): Signal {
  return build(rule, 'trouble', severity, c, text, keySuffix !== undefined ? { keySuffix } : {});
}

/** Timestamps of the input that caused a signal. */
export function sourceOf(input: { ts: number; receivedTs: number }): { sourceTs: number; receivedTs: number } {
  return { sourceTs: input.ts, receivedTs: input.receivedTs };
}

export function fmt(value: number, digits = 1): string {
  return value.toFixed(digits);
}
