// Plots as inline SVG: one short function, no library.
'use strict';

import { fmt, h, svg } from './core.js';

export const COLORS = { mean: '#2563eb', max: '#dc2626', ref: '#7c3aed', step: '#0f766e' };
export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

function niceStep(span) {
  const raw = span / 5 || 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

// series: [{name, color, points: [{x, y}], band: [{x, lo, hi}]?, dash?, label?}] -> <svg> (label: in each point's title)
export function plot(series, { width = 720, height = 260, yLabel = '' } = {}) {
  const pad = { l: 52, r: 14, t: 24, b: 30 };
  const all = series.flatMap((s) => [...s.points, ...(s.band || []).flatMap((b) => [{ x: b.x, y: b.lo }, { x: b.x, y: b.hi }])]);
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'plot', role: 'img' });
  if (!all.length) {
    root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'no closed generation yet'));
    return root;
  }
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const step = niceStep(y1 - y0);
  y0 = Math.floor(y0 / step) * step; y1 = Math.ceil(y1 / step) * step;
  const X = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  for (let y = y0; y <= y1 + step / 2; y += step) {
    root.append(svg('line', { class: 'grid', x1: pad.l, x2: width - pad.r, y1: Y(y), y2: Y(y) }));
    root.append(svg('text', { x: pad.l - 6, y: Y(y) + 4, 'text-anchor': 'end' }, fmt(y, step < 1 ? 2 : 0)));
  }
  const xStep = Math.max(1, Math.ceil((x1 - x0) / 10));
  for (let x = Math.ceil(x0); x <= x1; x += xStep) {
    root.append(svg('text', { x: X(x), y: height - pad.b + 16, 'text-anchor': 'middle' }, String(x)));
  }
  root.append(svg('line', { class: 'axis', x1: pad.l, x2: pad.l, y1: pad.t, y2: height - pad.b }));
  root.append(svg('line', { class: 'axis', x1: pad.l, x2: width - pad.r, y1: height - pad.b, y2: height - pad.b }));
  root.append(svg('text', { x: width - pad.r, y: height - 4, 'text-anchor': 'end' }, 'generation'));
  root.append(svg('text', { x: pad.l, y: 12 }, yLabel));
  for (const s of series) {
    if (s.band && s.band.length) {
      const upper = s.band.map((b) => `${X(b.x)},${Y(b.hi)}`);
      const lower = s.band.map((b) => `${X(b.x)},${Y(b.lo)}`).reverse();
      root.append(svg('polygon', { points: [...upper, ...lower].join(' '), fill: s.color, 'fill-opacity': 0.15 }));
    }
    const line = svg('polyline', { points: s.points.map((p) => `${X(p.x)},${Y(p.y)}`).join(' '), fill: 'none',
      stroke: s.color, 'stroke-width': 2, 'stroke-dasharray': s.dash || '' });
    root.append(line);
    for (const p of s.points) {
      const dot = svg('circle', { cx: X(p.x), cy: Y(p.y), r: 3, fill: s.color, class: `pt ${s.name}` });
      dot.append(svg('title', {}, `${s.label ? `${s.label} · ` : ''}generation ${p.x}: ${fmt(p.y, 3)}`));
      root.append(dot);
    }
  }
  return root;
}

export function legend(items) {
  return h('div', { class: 'legend' }, ...items.map(([color, label]) => h('span', {}, h('i', { style: `background:${color}` }), label)));
}
