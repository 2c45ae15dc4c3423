// Several sessions on one plot (a day's channels or animals): their stored score summaries, overlaid.
'use strict';

import { every, fmt, getJSON, h, setLive, when } from './core.js';
import { metadataEntries, sessionLabel, summaryOf } from './data.js';
import { REFRESH_MS } from './list.js';
import { PALETTE, legend, plot } from './plot.js';

const MEASURES = [
  ['mean', 'evolved mean', (r) => r.mean],
  ['max', 'evolved max', (r) => r.max],
  ['best', 'highest so far', null], // the running maximum of the evolved max (a best image is judged by its mean)
  ['ref', 'references mean', (r) => r.ref],
];

function points(rows, measure) {
  const [, , value] = MEASURES.find(([key]) => key === measure);
  if (value) return rows.map((r) => ({ x: r.x, y: value(r) })).filter((p) => p.y !== null);
  let best = -Infinity;
  return rows.map((r) => { best = Math.max(best, r.max); return { x: r.x, y: best }; });
}

function table(histories) {
  const rows = histories.map(({ session, generations }, i) => h('tr', { 'data-id': session.id },
    h('td', {}, h('i', { class: 'swatch', style: `background:${PALETTE[i % PALETTE.length]}` })),
    h('td', {}, h('a', { href: `#/sessions/${session.id}` }, session.id.slice(0, 12))),
    h('td', {}, h('span', { class: `state ${session.status}` }, session.status)),
    h('td', {}, (session.config.optimizer || {}).name || ''),
    h('td', { class: 'num' }, String(generations.filter((g) => g.status === 'closed').length)),
    h('td', { class: 'num' }, fmt(session.best_score)),
    h('td', {}, when(session.last_activity)),
    h('td', { class: 'meta' }, metadataEntries(session.config.metadata).map(([k, t]) => `${k}: ${t}`).join(' · '))));
  return h('table', { id: 'compare-table' }, h('thead', {}, h('tr', {}, ...['', 'session', 'state', 'optimizer',
    'closed generations', 'best score', 'last activity', 'metadata'].map((c) => h('th', {}, c)))), h('tbody', {}, ...rows));
}

export async function comparePage(ids, signal) {
  const view = document.getElementById('view');
  const measure = h('select', { id: 'measure' }, ...MEASURES.map(([key, label]) => h('option', { value: key }, label)));
  const plotSlot = h('div', { id: 'compare-plot' });
  const legendSlot = h('div');
  const tableSlot = h('div', { class: 'card' });
  const histories = new Map(); // id -> history; only a running session's is asked for again
  const draw = () => {
    const shown = ids.map((id) => histories.get(id)).filter(Boolean);
    const series = shown.map(({ session, generations }, i) => ({ name: `cmp-${i}`, color: PALETTE[i % PALETTE.length],
      label: sessionLabel(session), points: points(generations.map(summaryOf).filter((r) => r !== null), measure.value) }));
    plotSlot.replaceChildren(plot(series, { width: 1080, height: 360, yLabel: 'score' }));
    legendSlot.replaceChildren(legend(series.map((s) => [s.color, s.label])));
    tableSlot.replaceChildren(table(shown));
  };
  measure.addEventListener('change', draw);
  const status = h('p', { class: 'muted' });
  view.replaceChildren(h('h1', {}, `Compare ${ids.length} sessions`),
    h('div', { class: 'card' }, h('div', { class: 'filters' }, h('label', {}, 'plot ', measure), status), plotSlot, legendSlot), tableSlot);
  setLive('off', `every ${REFRESH_MS / 1000} s`);
  await every(REFRESH_MS, signal, async () => {
    const stale = ids.filter((id) => !histories.has(id) || histories.get(id).session.status === 'running');
    const loaded = await Promise.allSettled(stale.map((id) => getJSON(`/v1/sessions/${encodeURIComponent(id)}/history`, signal)));
    if (signal.aborted) return;
    loaded.forEach((answer, i) => { if (answer.status === 'fulfilled') histories.set(stale[i], answer.value); });
    const failed = loaded.map((a, i) => (a.status === 'rejected' ? `${stale[i]}: ${a.reason.message}` : null)).filter(Boolean);
    status.textContent = failed.length ? `could not load ${failed.join('; ')}` : '';
    status.className = failed.length ? 'error' : 'muted';
    if (stale.length) draw();
  });
}
