import { h, svg } from './dom.js';

/** A small SVG line chart of one series ({ t, v } points); booleans drawn as 0/1 steps. */
export function lineChart(series, { width = 320, height = 90, label = '' } = {}) {
  const pts = series.points.map((p) => ({ t: p.t, v: typeof p.v === 'boolean' ? (p.v ? 1 : 0) : p.v }));
  const box = h('figure', { class: 'chart', 'data-testid': `chart-${series.metric}` });
  box.append(h('figcaption', {}, `${label} `, h('span', { class: 'unit' }, series.unit)));
  if (pts.length === 0) {
    box.append(h('div', { class: 'chart-empty' }, '—'));
    return box;
  }
  const t0 = pts[0].t;
  const t1 = pts.at(-1).t || t0 + 1;
  let lo = Math.min(...pts.map((p) => p.v));
  let hi = Math.max(...pts.map((p) => p.v));
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const pad = 4;
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (width - 2 * pad);
  const y = (v) => height - pad - ((v - lo) / (hi - lo)) * (height - 2 * pad);
  const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const last = pts.at(-1);
  box.append(
    svg('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', height, role: 'img', 'aria-label': label },
      svg('path', { d, fill: 'none', stroke: 'currentColor', 'stroke-width': 1.6 }),
      svg('circle', { cx: x(last.t), cy: y(last.v), r: 3, fill: 'currentColor' }),
      svg('text', { x: width - pad, y: 12, 'text-anchor': 'end', class: 'chart-txt' }, `${last.v}`),
      svg('text', { x: pad, y: 12, class: 'chart-txt dim' }, `${Math.round(hi * 10) / 10}`),
      svg('text', { x: pad, y: height - 6, class: 'chart-txt dim' }, `${Math.round(lo * 10) / 10}`),
    ),
  );
  return box;
}
