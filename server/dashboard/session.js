// One session: score curves, step size, channels, galleries, metadata; live by the session's event stream.
'use strict';

import { Actions, Notes } from './actions.js';
import { access, fmt, getJSON, h, setLive, when } from './core.js';
import { channelMeans, metadataEntries, summaryOf } from './data.js';
import { COLORS, PALETTE, legend, plot } from './plot.js';
import { follow } from './stream.js';
import { Tiles, closeStimulus, showStimulus } from './tiles.js';

const tag = (kind, index) => (kind === 'reference' ? `ref ${index}` : `#${index}`);

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

function channelCard(generations, channels) {
  const closed = generations.filter((g) => g.status === 'closed');
  const series = channels.map((channel, i) => ({
    name: `ch-${i}`, color: PALETTE[i % PALETTE.length],
    points: closed.map((g) => channelMeans(g, channel)).filter((p) => p !== null),
  }));
  return h('div', { class: 'card', id: 'channel-card' }, h('h2', {}, 'Response per channel (evolved mean)'),
    // Full width, about 3/2 of the score plot's column: a wider view box keeps its text the others' size.
    h('div', { id: 'channel-plot' }, plot(series, { width: 1080, yLabel: 'response' })),
    legend(channels.map((channel, i) => [PALETTE[i % PALETTE.length], channel])));
}

function stepSizeCard(rows) {
  const points = rows.filter((r) => r.step !== null).map((r) => ({ x: r.x, y: r.step.value }));
  const label = points.length ? rows.find((r) => r.step !== null).step.label : null; // one optimizer per session
  const body = points.length ? plot([{ name: 'step', color: COLORS.step, points }], { width: 360, height: 260, yLabel: label })
    : h('p', { class: 'muted' }, 'this optimizer reports no step size');
  return h('div', { class: 'card', id: 'step-card' }, h('h2', {}, `Optimizer step size${label ? ` (${label})` : ''}`), body);
}

function statsBar(session) {
  const config = session.config || {};
  const stat = (label, value, id) => h('div', {}, h('span', { class: 'muted' }, label), h('b', id ? { id } : {}, value));
  return h('div', { class: 'card stats', id: 'stats' },
    stat('state', h('span', { class: `state ${session.status}` }, session.status), 'stat-state'),
    stat('generation', String(session.generation), 'stat-generation'),
    stat('best score', fmt(session.best_score), 'stat-best'),
    stat('generator', config.generator || ''),
    stat('optimizer', (config.optimizer || {}).name || ''),
    stat('population', String(config.population_size || '')),
    stat('created', when(session.created_at), 'stat-created'),
    stat('last activity', when(session.last_activity), 'stat-activity'));
}

// The generation a rig works on: open while the session runs, waiting while it is stopped; none once finished.
const OPEN_TITLES = { running: 'open: waiting for responses', stopped: 'stopped: resume the session to post responses' };

function currentCard(session, generation, tiles) {
  if (!generation || generation.status !== 'open' || !OPEN_TITLES[session.status]) return null;
  const current = generation.stimuli.map((s) => tiles.tile('current', s, generation, tag(s.kind, s.index)));
  return h('div', { class: 'card', id: 'current-card' }, h('h2', {}, `Generation ${generation.number} (${OPEN_TITLES[session.status]})`),
    h('div', { class: 'gallery', id: 'current-gallery' }, ...current));
}

// The last scored generation, best first: what the neuron liked in the images it just saw.
function scoredCard(generation, tiles) {
  if (!generation) return h('div', { class: 'card' }, h('h2', {}, 'Last scored generation'), h('p', { class: 'muted' }, 'none yet'));
  const ranked = generation.stimuli.filter((s) => s.score !== null).sort((a, b) => b.score - a.score);
  const shown = ranked.map((s) => tiles.tile('scored', s, generation, `${tag(s.kind, s.index)} · ${fmt(s.score)}`));
  return h('div', { class: 'card' }, h('h2', {}, `Generation ${generation.number}, sorted by score`),
    h('div', { class: 'gallery', id: 'scored-gallery' }, ...shown));
}

function bestCard(rows, generations, tiles) {
  const at = new Map(generations.map((g) => [g.number, g]));
  const best = rows.filter((r) => r.best !== null).map((r) => tiles.tile('best', r.best, at.get(r.x), `gen ${r.x} · ${fmt(r.max)}`));
  return h('div', { class: 'card' }, h('h2', {}, 'Best image of each generation (click an image for its counts)'),
    best.length ? h('div', { class: 'gallery', id: 'best-gallery' }, ...best) : h('p', { class: 'muted' }, 'no closed generation yet'));
}

function metadataCard(session) {
  const entries = metadataEntries(session.config.metadata).filter(([key]) => key !== 'notes');
  return h('div', { class: 'card', id: 'metadata-card' }, h('h2', {}, 'Metadata'), entries.length
    ? h('dl', { class: 'facts' }, ...entries.flatMap(([key, text]) => [h('dt', {}, key), h('dd', {}, text)]))
    : h('p', { class: 'muted' }, 'none'));
}

function configCard(session) {
  const config = { ...session.config };
  delete config.metadata;
  return h('details', { class: 'card' }, h('summary', {}, h('h2', {}, 'Configuration')), h('pre', {}, JSON.stringify(config, null, 2)));
}

function drawSession(slots, history, tiles) {
  const { session, generations } = history;
  const rows = generations.map(summaryOf).filter((r) => r !== null);
  const channels = session.config.channels || [];
  const lastScored = generations.filter((g) => g.status === 'closed').pop();
  tiles.begin();
  slots.data.replaceChildren(
    statsBar(session),
    h('div', { class: 'plots' }, scoreCard(rows), stepSizeCard(rows)),
    ...(channels.length > 1 ? [channelCard(generations, channels)] : []),
    bestCard(rows, generations, tiles),
    scoredCard(lastScored, tiles),
    currentCard(session, generations[generations.length - 1], tiles) || '');
  tiles.end();
  slots.meta.replaceChildren(metadataCard(session));
  slots.config.replaceChildren(configCard(session));
}

// The badge: green 'live' only while a running session's stream is open.
function badge(status, stream) {
  if (status === 'finished') setLive('finished');
  else if (stream !== 'open') setLive('off', stream === 'connecting' ? 'connecting…' : stream.startsWith('refused') ? `stream ${stream}` : 'reconnecting…');
  else setLive(status === 'running' ? 'on' : status);
}

export async function sessionPage(id, signal) {
  const view = document.getElementById('view');
  const path = `/v1/sessions/${encodeURIComponent(id)}`;
  const slots = { data: h('div', { id: 'session-data' }), meta: h('div'), config: h('div') };
  let shown = null; // the session last drawn
  let busy = false;
  let again = false;
  let stream = 'connecting';
  const stateOf = (session) => `${session.generation}|${session.status}|${session.best_score}`;
  const tiles = new Tiles(id, (stimulus, generation) => showStimulus(shown, stimulus, generation));
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        const history = await getJSON(`${path}/history`, signal);
        if (signal.aborted) return;
        shown = history.session;
        drawSession(slots, history, tiles);
        actions.update(shown);
        notes.update(shown);
        badge(shown.status, stream);
      } while (again && !signal.aborted);
    } catch (err) {
      if (!signal.aborted) view.replaceChildren(h('p', { class: 'error' }, `could not load session ${id}: ${err.message}`));
    } finally {
      busy = false;
    }
  };
  const rights = await access();
  const actions = new Actions(id, rights, refresh);
  const notes = new Notes(id, rights, refresh);
  signal.addEventListener('abort', closeStimulus);
  view.replaceChildren(h('h1', {}, `Session ${id}`), actions.element, slots.data,
    h('div', { class: 'cols' }, notes.element, slots.meta), slots.config);
  setLive('off', 'connecting…');
  await refresh();
  if (!shown || shown.status === 'finished') return; // nothing more will happen to it
  const streamDone = new AbortController();
  signal.addEventListener('abort', () => streamDone.abort());
  follow(`${path}/events`, streamDone.signal, (session) => {
    if (session.status === 'finished') streamDone.abort();
    if (stateOf(session) !== stateOf(shown)) refresh();
  }, (state) => { stream = state; if (shown) badge(shown.status, stream); });
}
