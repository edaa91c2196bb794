import type { IncidentMessage } from '../../contract/incidents.ts';
import type { Severity } from '../../contract/payloads.ts';
import type { RegistryIndex } from '../../contract/registry-index.ts';

/**
 * The words of a notification (issue 15): Chinese first, then English; the home, the room or bed,
 * the resident where there is one, what happened, the severity and a link to the page. Pure.
 */

const SEVERITY: Readonly<Record<Severity, { zh: string; en: string }>> = {
  critical: { zh: '紧急', en: 'CRITICAL' },
  high: { zh: '高', en: 'high' },
  medium: { zh: '中', en: 'medium' },
  low: { zh: '低', en: 'low' },
};

const LEVEL: ReadonlyArray<{ zh: string; en: string }> = [
  { zh: '值班', en: 'on duty' },
  { zh: '已升级至院长', en: 'escalated to the director' },
  { zh: '已升级至民政局', en: 'escalated to the bureau' },
];

const HOUSEHOLD_LEVEL_1 = { zh: '已升级至服务机构负责人', en: "escalated to the provider's manager" };

export interface RenderedMessage {
  readonly title: string;
  readonly text: string;
  readonly short: string;
  readonly link: string;
}

/**
 * SMS: 70 UCS-2 characters per segment, 67 per part of a concatenated message (3GPP TS 23.038 /
 * 23.040). The short text aims at two parts: the Chinese line with place and link first.
 */
export const SMS_MAX_CHARS = 134;

export function renderIncident(incident: IncidentMessage, registry: RegistryIndex, baseUrl: string, level: number): RenderedMessage {
  const home = registry.home(incident.homeId);
  const homeZh = home?.name ?? incident.homeId;
  const homeEn = home?.nameEn ?? incident.homeId;
  const roomId = incident.roomIds[0];
  const room = roomId !== undefined ? registry.room(incident.homeId, roomId) : undefined;
  const resident = incident.residentId !== undefined ? registry.resident(incident.residentId) : undefined;
  let placeZh = room?.name ?? roomId ?? '';
  let placeEn = room?.nameEn ?? roomId ?? '';
  if (resident !== undefined) {
    placeZh = `${placeZh} ${resident.bed}床 ${resident.name}`.trim();
    placeEn = `${placeEn} bed ${resident.bed}, ${resident.name}`.trim();
  }
  const more = incident.roomIds.length > 1 ? { zh: `等${incident.roomIds.length}处`, en: ` and ${incident.roomIds.length - 1} more` } : { zh: '', en: '' };
  const sev = SEVERITY[incident.severity];
  // A household has no director: its level 1 is the home-care provider's manager (issue 15).
  const lvl = (level === 1 && home?.kind === 'household' ? HOUSEHOLD_LEVEL_1 : LEVEL[Math.min(level, LEVEL.length - 1)]) ?? { zh: '', en: '' };
  const link = `${baseUrl.replace(/\/+$/, '')}/?incident=${encodeURIComponent(incident.id)}`;
  // A home-wide incident (communication loss of the home, a panel fault) has no room: no empty place.
  const whereZh = placeZh === '' ? homeZh : `${homeZh} ${placeZh}${more.zh}`;
  const whereZhComma = placeZh === '' ? homeZh : `${homeZh}，${placeZh}${more.zh}`;
  const whereEn = placeEn === '' ? homeEn : `${homeEn}, ${placeEn}${more.en}`;
  const title = `【${sev.zh}】${whereZh}：${incident.message.zh}`;
  // The link is not part of the text: each adapter places it once (a field of the webhook's JSON,
  // the last line or a markdown link of a robot message, the end of the SMS).
  const text = [`${whereZhComma}：${incident.message.zh}。级别：${sev.zh}（${lvl.zh}）`, `${whereEn}: ${incident.message.en}. Severity: ${sev.en} (${lvl.en})`].join('\n');
  const shortZh = title;
  const room_ = Math.max(0, SMS_MAX_CHARS - link.length - 1);
  const short = `${[...shortZh].slice(0, room_).join('')} ${link}`;
  return { title, text, short, link };
}
