// The sessions: sortable columns, readable metadata, a filter; pick several to compare their score curves.
'use strict';

import { every, fmt, getJSON, h, setLive, timeText, when } from './core.js';
import { metadataEntries } from './data.js';

export const REFRESH_MS = 10000; // while the page is shown: a generation takes about a minute
const NOTE_CHARS = 80;

function metadataCell(metadata) {
  const chips = metadataEntries(metadata).map(([key, text]) => {
    const short = text.length > NOTE_CHARS ? `${text.slice(0, NOTE_CHARS - 1)}…` : text;
    return h('span', { class: 'chip', title: text }, h('span', { class: 'key' }, key), ' ', short);
  });
  return h('td', { class: 'meta' }, ...chips.flatMap((chip) => [chip, ' ']));
}

const config = (s) => s.config || {};
// Each column: its label, the value it sorts by, and its cell.
const COLUMNS = [
  { key: 'id', label: 'session', value: (s) => s.id, cell: (s) => h('td', {}, h('a', { href: `#/sessions/${s.id}` }, s.id.slice(0, 12))) },
  { key: 'status', label: 'state', value: (s) => s.status, cell: (s) => h('td', {}, h('span', { class: `state ${s.status}` }, s.status)) },
  { key: 'generator', label: 'generator', value: (s) => config(s).generator || '' },
  { key: 'optimizer', label: 'optimizer', value: (s) => (config(s).optimizer || {}).name || '' },
  { key: 'generation', label: 'generation', value: (s) => s.generation, numeric: true },
  { key: 'best', label: 'best score', value: (s) => s.best_score, numeric: true, cell: (s) => h('td', { class: 'num' }, fmt(s.best_score)) },
  { key: 'created', label: 'created', value: (s) => s.created_at, cell: (s) => h('td', {}, when(s.created_at)) },
  { key: 'activity', label: 'last activity', value: (s) => s.last_activity, cell: (s) => h('td', {}, when(s.last_activity)) },
  { key: 'metadata', label: 'metadata', value: (s) => metadataEntries(config(s).metadata).map(([, t]) => t).join(' '),
    cell: (s) => metadataCell(config(s).metadata) },
];

function compare(column, direction) {
  return (a, b) => {
    const [x, y] = [column.value(a), column.value(b)];
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1; // none last, either way
    if (y === null || y === undefined) return -1;
    return direction * (column.numeric ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true }));
  };
}

function matches(s, state, text) {
  if (state && s.status !== state) return false;
  const haystack = [s.id, config(s).generator, (config(s).optimizer || {}).name, ...metadataEntries(config(s).metadata).flat()];
  return !text || haystack.join(' ').toLowerCase().includes(text.toLowerCase());
}

export async function listPage(signal) {
  const view = document.getElementById('view');
  const state = h('select', {}, ...['', 'running', 'stopped', 'finished'].map((v) => h('option', { value: v }, v || 'any state')));
  const text = h('input', { type: 'search', placeholder: 'filter by id, optimizer, metadata (animal, array, notes…)' });
  const count = h('span', { class: 'muted' });
  const updated = h('span', { class: 'muted', id: 'updated' });
  const selected = new Set();
  const compareButton = h('button', { type: 'button', id: 'compare', disabled: true,
    onclick: () => { location.hash = `#/compare/${[...selected].join(',')}`; } }, 'Compare selected');
  const head = h('tr');
  const body = h('tbody');
  let sort = { key: 'created', direction: -1 }; // newest first, as the server lists them
  let sessions = [];
  let total = 0;
  let drawnFrom = null;
  const pick = (id, on) => {
    if (on) selected.add(id); else selected.delete(id);
    compareButton.disabled = selected.size < 2;
    compareButton.textContent = `Compare selected (${selected.size})`;
  };
  const row = (s) => h('tr', { class: 'row', 'data-id': s.id, onclick: (e) => { if (!e.target.closest('input,a')) location.hash = `#/sessions/${s.id}`; } },
    h('td', { class: 'pick' }, h('input', { type: 'checkbox', 'aria-label': `select ${s.id}`, checked: selected.has(s.id),
      onchange: (e) => pick(s.id, e.target.checked) })),
    ...COLUMNS.map((c) => (c.cell ? c.cell(s) : h('td', c.numeric ? { class: 'num' } : {}, String(c.value(s))))));
  const drawHead = () => head.replaceChildren(h('th', {}, ''), ...COLUMNS.map((c) => {
    const on = sort.key === c.key;
    return h('th', { 'data-key': c.key, class: 'sortable', 'aria-sort': on ? (sort.direction > 0 ? 'ascending' : 'descending') : 'none',
      title: 'sort', onclick: () => { sort = { key: c.key, direction: on ? -sort.direction : (c.numeric ? -1 : 1) }; draw(); } },
    c.label, h('span', { class: 'arrow' }, on ? (sort.direction > 0 ? ' ▲' : ' ▼') : ''));
  }));
  const draw = () => {
    const column = COLUMNS.find((c) => c.key === sort.key);
    const shown = sessions.filter((s) => matches(s, state.value, text.value.trim())).sort(compare(column, sort.direction));
    drawHead();
    body.replaceChildren(...shown.map(row));
    count.textContent = `${shown.length} shown of ${total}${total > sessions.length ? ` (the newest ${sessions.length})` : ''}`;
  };
  const load = async () => {
    try {
      const data = await getJSON('/v1/sessions?limit=500', signal);
      updated.textContent = `updated ${timeText(new Date().toISOString())}`;
      const seen = JSON.stringify(data);
      if (seen === drawnFrom) return; // nothing changed: keep the page as it is
      drawnFrom = seen;
      sessions = data.items; total = data.total;
      draw();
    } catch (err) {
      if (!signal.aborted) count.textContent = `could not load sessions: ${err.message}`;
    }
  };
  state.addEventListener('change', draw);
  text.addEventListener('input', draw);
  view.replaceChildren(h('h1', {}, 'Sessions'),
    h('div', { class: 'filters' }, state, text, count, compareButton, h('button', { type: 'button', id: 'refresh', onclick: load }, 'Refresh'), updated),
    h('table', { id: 'sessions' }, h('thead', {}, head), body));
  pick(null, false);
  setLive('off', `every ${REFRESH_MS / 1000} s`);
  await every(REFRESH_MS, signal, load);
}
