// evostim dashboard: plain JS, no build step, nothing fetched from outside this server.
// Routes: #/ (sessions) and #/sessions/<id> (one session, live via GET /v1/sessions/<id>/events).
'use strict';

const TOKEN_KEY = 'evostim.token';
const SVG_NS = 'http://www.w3.org/2000/svg';
const COLORS = { mean: '#2563eb', max: '#dc2626', ref: '#7c3aed', step: '#0f766e' };
let tokenAsked = false;
let page = null; // AbortController of the page on screen
const imageCache = new Map(); // image path -> Promise<object URL>; images never change

// -- HTTP ---------------------------------------------------------------------------------------------
function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(path, options = {}) {
  for (;;) {
    const headers = { ...authHeaders(), ...(options.headers || {}) };
    const res = await fetch(path, { ...options, headers });
    if (res.status !== 401 || tokenAsked) return res;
    tokenAsked = true; // ask once per page load
    const token = window.prompt('This evostim server needs a bearer token: a read-only one (EVOSTIM_READ_TOKENS, sees every session) or a rig\'s (EVOSTIM_TOKENS, sees its own):');
    if (!token) return res;
    localStorage.setItem(TOKEN_KEY, token.trim());
    showForgetButton();
  }
}

async function getJSON(path, signal) {
  const res = await api(path, { signal });
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch { /* not JSON */ }
    throw new Error(`${res.status}: ${detail}`);
  }
  return res.json();
}

function imageURL(path) {
  if (!imageCache.has(path)) {
    const load = api(path).then((res) => {
      if (!res.ok) throw new Error(`${res.status}`);
      return res.blob();
    }).then((blob) => URL.createObjectURL(blob));
    load.catch(() => imageCache.delete(path));
    imageCache.set(path, load);
  }
  return imageCache.get(path);
}

// -- DOM helpers --------------------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (text !== null) el.textContent = text;
  return el;
}

const fmt = (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toFixed(digits));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function setLive(on, text) {
  const el = document.getElementById('live');
  el.className = `live ${on ? 'on' : 'off'}`;
  el.textContent = text || (on ? 'live' : 'offline');
}

function showForgetButton() {
  const button = document.getElementById('forget-token');
  button.hidden = !localStorage.getItem(TOKEN_KEY);
}

// -- plots: one short function, inline SVG --------------------------------------------------------------
function niceStep(span) {
  const raw = span / 5 || 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

// series: [{name, color, points: [{x, y}], band: [{x, lo, hi}]?, dash?}] -> <svg>
function plot(series, { width = 720, height = 260, yLabel = '' } = {}) {
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
      dot.append(svg('title', {}, `generation ${p.x}: ${fmt(p.y, 3)}`));
      root.append(dot);
    }
  }
  return root;
}

function legend(items) {
  return h('div', { class: 'legend' }, ...items.map(([color, label]) => h('span', {}, h('i', { style: `background:${color}` }), label)));
}

// -- sessions list ----------------------------------------------------------------------------------------
function sessionRow(s) {
  const config = s.config || {};
  const open = () => { location.hash = `#/sessions/${s.id}`; };
  return h('tr', { class: 'row', onclick: open, 'data-id': s.id },
    h('td', {}, h('a', { href: `#/sessions/${s.id}` }, s.id.slice(0, 12))),
    h('td', {}, h('span', { class: `state ${s.status}` }, s.status)),
    h('td', {}, config.generator || ''),
    h('td', {}, (config.optimizer || {}).name || ''),
    h('td', {}, String(s.generation)),
    h('td', {}, fmt(s.best_score)),
    h('td', {}, new Date(s.last_activity).toLocaleString()),
    h('td', { class: 'meta' }, JSON.stringify(config.metadata || {})));
}

function matches(s, state, text) {
  if (state && s.status !== state) return false;
  return !text || JSON.stringify((s.config || {}).metadata || {}).toLowerCase().includes(text.toLowerCase());
}

async function listPage(signal) {
  const view = document.getElementById('view');
  const state = h('select', {}, ...['', 'running', 'stopped', 'finished'].map((v) => h('option', { value: v }, v || 'any state')));
  const text = h('input', { type: 'search', placeholder: 'filter by metadata (animal, array, notes…)' });
  const count = h('span', { class: 'muted' });
  const body = h('tbody');
  const table = h('table', {}, h('thead', {}, h('tr', {}, ...['session', 'state', 'generator', 'optimizer',
    'generation', 'best score', 'last activity', 'metadata'].map((c) => h('th', {}, c)))), body);
  view.replaceChildren(h('h1', {}, 'Sessions'), h('div', { class: 'filters' }, state, text, count), table);
  let sessions = [];
  let total = 0;
  const draw = () => {
    const shown = sessions.filter((s) => matches(s, state.value, text.value.trim()));
    body.replaceChildren(...shown.map(sessionRow));
    count.textContent = `${shown.length} shown of ${total}`;
  };
  state.addEventListener('change', draw);
  text.addEventListener('input', draw);
  setLive(false, 'refresh 5 s');
  while (!signal.aborted) {
    try {
      const data = await getJSON('/v1/sessions?limit=500', signal);
      sessions = data.items; total = data.total;
      draw();
    } catch (err) {
      if (signal.aborted) return;
      count.textContent = `could not load sessions: ${err.message}`;
    }
    await sleep(5000);
  }
}

// -- one session --------------------------------------------------------------------------------------------
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

// The score summary the server stored with each closed generation (evostim/summary.py, in the history among the
// generation's optimizer entries), drawn as it is: nothing is recomputed here. The best image is the first evolved
// stimulus that scored the summary's max, the one the server names.
const number = (x) => (typeof x === 'number' ? x : null);

function summaryOf(generation) {
  const summary = generation.optimizer || {};
  if (generation.status !== 'closed' || number(summary.evolved_mean) === null) return null;
  const best = generation.stimuli.find((s) => s.kind === 'evolved' && s.score === summary.evolved_max) || null;
  return { x: generation.number, mean: summary.evolved_mean, sd: number(summary.evolved_sd), max: summary.evolved_max,
    ref: number(summary.reference_mean), best, step: stepSize(summary) };
}

// The step size an optimizer reports in its summary: CMA-ES's sigma, or the sphere searches' angle (sphere-cma,
// metric-cma), whose steps are angles on the code sphere.
const STEP_SIZES = [['sigma', 'sigma'], ['angle_deg', 'angle, degrees']];

function stepSize(summary) {
  const found = STEP_SIZES.find(([key]) => summary && typeof summary[key] === 'number');
  return found ? { value: summary[found[0]], label: found[1] } : null;
}

function imageTile(sessionId, stimulus, caption, extraClass = '') {
  const img = h('img', { alt: caption, 'data-stimulus': stimulus.id });
  imageURL(`/v1/sessions/${sessionId}/stimuli/${stimulus.id}.png`).then((url) => { img.src = url; }, () => {});
  return h('figure', { class: `${stimulus.kind} ${extraClass}`.trim() }, img, h('figcaption', {}, caption));
}

function scoreCard(rows) {
  const series = [
    { name: 'mean', color: COLORS.mean, points: rows.map((r) => ({ x: r.x, y: r.mean })),
      band: rows.filter((r) => r.sd !== null).map((r) => ({ x: r.x, lo: r.mean - r.sd, hi: r.mean + r.sd })) },
    { name: 'max', color: COLORS.max, points: rows.map((r) => ({ x: r.x, y: r.max })) },
    { name: 'ref', color: COLORS.ref, dash: '5 4', points: rows.filter((r) => r.ref !== null).map((r) => ({ x: r.x, y: r.ref })) },
  ];
  return h('div', { class: 'card', id: 'score-card' }, h('h2', {}, 'Score per generation'),
    h('div', { id: 'score-plot' }, plot(series, { yLabel: 'score' })),
    legend([[COLORS.mean, 'evolved mean (band: ± 1 SD)'], [COLORS.max, 'evolved max'], [COLORS.ref, 'references mean']]));
}

// Multi-channel sessions: each channel's response (mean over repetitions) averaged over the evolved images.
const CHANNEL_COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

function channelMeans(generation, channel) {
  const values = generation.stimuli
    .filter((s) => s.kind === 'evolved' && s.counts && s.counts[channel] && s.counts[channel].length)
    .map((s) => mean(s.counts[channel]));
  return values.length ? { x: generation.number, y: mean(values) } : null;
}

function channelCard(generations, channels) {
  const closed = generations.filter((g) => g.status === 'closed');
  const series = channels.map((channel, i) => ({
    name: `ch-${i}`, color: CHANNEL_COLORS[i % CHANNEL_COLORS.length],
    points: closed.map((g) => channelMeans(g, channel)).filter((p) => p !== null),
  }));
  return h('div', { class: 'card', id: 'channel-card' }, h('h2', {}, 'Response per channel (evolved mean)'),
    // Full width, about 3/2 of the score plot's column: a wider view box keeps its text the others' size.
    h('div', { id: 'channel-plot' }, plot(series, { width: 1080, yLabel: 'response' })),
    legend(channels.map((channel, i) => [CHANNEL_COLORS[i % CHANNEL_COLORS.length], channel])));
}

// The last scored generation, best first: what the neuron liked in the images it just saw.
function scoredCard(session, generation) {
  if (!generation) return h('div', { class: 'card' }, h('h2', {}, 'Last scored generation'), h('p', { class: 'muted' }, 'none yet'));
  const ranked = generation.stimuli.filter((s) => s.score !== null).sort((a, b) => b.score - a.score);
  const tiles = ranked.map((s) => imageTile(session.id, s, `${s.kind === 'reference' ? `ref ${s.index}` : `#${s.index}`} · ${fmt(s.score)}`));
  return h('div', { class: 'card' }, h('h2', {}, `Generation ${generation.number}, sorted by score`),
    h('div', { class: 'gallery', id: 'scored-gallery' }, ...tiles));
}

function stepSizeCard(rows) {
  const points = rows.filter((r) => r.step !== null).map((r) => ({ x: r.x, y: r.step.value }));
  const label = points.length ? rows.find((r) => r.step !== null).step.label : null;  // one optimizer per session
  const body = points.length ? plot([{ name: 'step', color: COLORS.step, points }], { width: 360, height: 260, yLabel: label })
    : h('p', { class: 'muted' }, 'this optimizer reports no step size');
  return h('div', { class: 'card', id: 'step-card' }, h('h2', {}, `Optimizer step size${label ? ` (${label})` : ''}`), body);
}

function statsBar(session) {
  const config = session.config || {};
  const stat = (label, value, id) => h('div', {}, h('span', { class: 'muted' }, label), h('b', id ? { id } : {}, value));
  return h('div', { class: 'card stats', id: 'stats' },
    stat('state', h('span', { class: `state ${session.status}` }, session.status)),
    stat('generation', String(session.generation), 'stat-generation'),
    stat('best score', fmt(session.best_score), 'stat-best'),
    stat('generator', config.generator || ''),
    stat('optimizer', (config.optimizer || {}).name || ''),
    stat('population', String(config.population_size || '')),
    stat('created', new Date(session.created_at).toLocaleString()),
    stat('last activity', new Date(session.last_activity).toLocaleString(), 'stat-activity'));
}

function drawSession(view, history) {
  const { session, generations } = history;
  const rows = generations.map(summaryOf).filter((r) => r !== null);
  const open = generations.filter((g) => g.status === 'open').pop() || generations[generations.length - 1];
  const gallery = rows.filter((r) => r.best !== null).map((r) => imageTile(session.id, r.best, `gen ${r.x} · ${fmt(r.max)}`));
  const current = open ? open.stimuli.map((s) => imageTile(session.id, s, s.kind === 'reference' ? `ref ${s.index}` : `#${s.index}`)) : [];
  const config = { ...session.config };
  delete config.metadata;
  const channels = session.config.channels || [];
  const lastScored = generations.filter((g) => g.status === 'closed').pop();
  view.replaceChildren(
    h('h1', {}, `Session ${session.id}`),
    statsBar(session),
    h('div', { class: 'plots' }, scoreCard(rows), stepSizeCard(rows)),
    ...(channels.length > 1 ? [channelCard(generations, channels)] : []),
    h('div', { class: 'card' }, h('h2', {}, 'Best image of each generation'),
      gallery.length ? h('div', { class: 'gallery', id: 'best-gallery' }, ...gallery) : h('p', { class: 'muted' }, 'no closed generation yet')),
    scoredCard(session, lastScored),
    h('div', { class: 'card' }, h('h2', {}, open ? `Generation ${open.number} (${open.status})` : 'No generation'),
      h('div', { class: 'gallery', id: 'current-gallery' }, ...current)),
    h('div', { class: 'cols' },
      h('div', { class: 'card' }, h('h2', {}, 'Configuration'), h('pre', {}, JSON.stringify(config, null, 2))),
      h('div', { class: 'card' }, h('h2', {}, 'Metadata'), h('pre', {}, JSON.stringify(session.config.metadata || {}, null, 2)))));
}

function parseEvent(block) {
  const data = block.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).replace(/^ /, ''));
  return data.length ? data.join('\n') : null;
}

// Reads a server-sent event stream with fetch (EventSource cannot send an Authorization header); reconnects.
async function follow(path, signal, onEvent) {
  while (!signal.aborted) {
    try {
      const res = await api(path, { signal, headers: { Accept: 'text/event-stream' } });
      if (res.status === 404 || res.status === 401) { setLive(false, `stream: ${res.status}`); return; }
      if (!res.ok) throw new Error(String(res.status));
      setLive(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
          const data = parseEvent(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (data !== null) onEvent(JSON.parse(data));
        }
      }
    } catch (err) {
      if (signal.aborted) return;
    }
    setLive(false, 'reconnecting…');
    await sleep(2000);
  }
}

async function sessionPage(id, signal) {
  const view = document.getElementById('view');
  let busy = false;
  let again = false;
  let drawn = null; // the state last drawn: the stream's first event repeats it, and need not redraw the page
  const stateOf = (session) => `${session.generation}|${session.status}|${session.best_score}`;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        const history = await getJSON(`/v1/sessions/${encodeURIComponent(id)}/history`, signal);
        if (!signal.aborted) { drawSession(view, history); drawn = stateOf(history.session); }
      } while (again && !signal.aborted);
    } catch (err) {
      if (!signal.aborted) view.replaceChildren(h('p', { class: 'error' }, `could not load session ${id}: ${err.message}`));
    } finally {
      busy = false;
    }
  };
  setLive(false, 'connecting…');
  await refresh();
  follow(`/v1/sessions/${encodeURIComponent(id)}/events`, signal, (session) => { if (stateOf(session) !== drawn) refresh(); });
}

// -- routing ------------------------------------------------------------------------------------------------
function route() {
  if (page) page.abort();
  page = new AbortController();
  const match = location.hash.match(/^#\/sessions\/([^/]+)$/);
  if (match) sessionPage(decodeURIComponent(match[1]), page.signal);
  else listPage(page.signal);
}

document.getElementById('forget-token').addEventListener('click', () => {
  localStorage.removeItem(TOKEN_KEY);
  tokenAsked = false;
  showForgetButton();
  route();
});
window.addEventListener('hashchange', route);
showForgetButton();
route();
