// Image tiles that survive redraws, and the details of one stimulus (a click on its tile).
'use strict';

import { fmt, getJSON, h, imageURL } from './core.js';

// A page's tiles: each gallery keeps the <img> it drew a stimulus with, so a redraw moves the loaded image into the
// new figure instead of loading and decoding it again (no flash); an image not loaded yet shows as an empty frame.
export class Tiles {
  constructor(sessionId, onOpen) {
    this.sessionId = sessionId;
    this.onOpen = onOpen;
    this.images = new Map(); // `${gallery}/${stimulus id}` -> <img>
    this.used = new Set();
  }

  begin() { this.used = new Set(); }

  // Forget the images this draw did not show (a gallery's older generations).
  end() {
    for (const key of [...this.images.keys()]) if (!this.used.has(key)) this.images.delete(key);
  }

  tile(gallery, stimulus, generation, caption) {
    const key = `${gallery}/${stimulus.id}`;
    this.used.add(key);
    if (!this.images.has(key)) this.images.set(key, this.image(stimulus, caption));
    const open = () => this.onOpen(stimulus, generation);
    return h('figure', { class: stimulus.kind, 'data-stimulus': stimulus.id, tabindex: 0, title: `${stimulus.id}: details`,
      onclick: open, onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } } },
    h('span', { class: 'frame' }, this.images.get(key)), h('figcaption', {}, caption));
  }

  image(stimulus, caption) {
    const img = h('img', { alt: '', class: 'pending', 'data-stimulus': stimulus.id });
    img.addEventListener('load', () => { img.classList.remove('pending'); img.alt = caption; });
    img.addEventListener('error', () => { img.classList.add('failed'); });
    imageURL(`/v1/sessions/${this.sessionId}/stimuli/${stimulus.id}.png`).then((url) => { img.src = url; },
      () => { img.classList.add('failed'); });
    return img;
  }
}

// -- one stimulus's details ---------------------------------------------------------------------------------------
const codes = new Map(); // `${session}/${generation}` -> Promise<Map<stimulus id, code>>

function codesOf(sessionId, generation) {
  const key = `${sessionId}/${generation}`;
  if (!codes.has(key)) {
    const path = `/v1/sessions/${encodeURIComponent(sessionId)}/history?codes=true&from_generation=${generation}&to_generation=${generation + 1}`;
    const load = getJSON(path).then((history) => new Map(history.generations.flatMap((g) => g.stimuli.map((s) => [s.id, s.code]))));
    load.catch(() => codes.delete(key));
    codes.set(key, load);
  }
  return codes.get(key);
}

const norm = (code) => Math.sqrt(code.reduce((sum, x) => sum + x * x, 0));

function statusOf(stimulus, generation) {
  if (stimulus.score !== null || stimulus.counts) return 'measured';
  return generation.status === 'open' ? 'not measured yet (open generation)' : 'missing: left out of its generation\'s post';
}

// Counts per repetition, a row per channel (and one per channel's baseline), with their mean.
function countsTable(stimulus) {
  const rows = [];
  for (const [what, values] of [['', stimulus.counts], ['baseline ', stimulus.baseline]]) {
    for (const [channel, reps] of Object.entries(values || {})) rows.push([`${what}${channel}`, reps]);
  }
  if (!rows.length) return h('p', { class: 'muted' }, 'no counts');
  const width = Math.max(...rows.map(([, reps]) => reps.length));
  const mean = (reps) => reps.reduce((a, b) => a + b, 0) / reps.length;
  return h('table', { class: 'counts' },
    h('thead', {}, h('tr', {}, h('th', {}, 'channel'), ...Array.from({ length: width }, (_, i) => h('th', {}, `rep ${i + 1}`)), h('th', {}, 'mean'))),
    h('tbody', {}, ...rows.map(([name, reps]) => h('tr', {}, h('th', {}, name),
      ...Array.from({ length: width }, (_, i) => h('td', {}, i < reps.length ? String(reps[i]) : '')), h('td', {}, fmt(mean(reps), 3))))));
}

function dialog() {
  let el = document.getElementById('stimulus-dialog');
  if (!el) {
    el = h('dialog', { id: 'stimulus-dialog', class: 'card' });
    el.addEventListener('click', (e) => { if (e.target === el) el.close(); }); // a click beside the box
    document.body.append(el);
  }
  return el;
}

export function closeStimulus() {
  const el = document.getElementById('stimulus-dialog');
  if (el && el.open) el.close();
}

export function showStimulus(session, stimulus, generation) {
  const el = dialog();
  const name = stimulus.kind === 'reference' ? `reference ${stimulus.index}` : `evolved #${stimulus.index}`;
  const img = h('img', { alt: stimulus.id, class: 'large' });
  imageURL(`/v1/sessions/${session.id}/stimuli/${stimulus.id}.png`).then((url) => { img.src = url; }, () => {});
  const codeNorm = h('b', { id: 'detail-norm' }, '…');
  const rendered = session.config && typeof session.config.code_norm === 'number'
    ? ` (shown on the sphere of norm ${fmt(session.config.code_norm)})` : '';
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'score'), h('dd', { id: 'detail-score' }, fmt(stimulus.score, 3)),
    h('dt', {}, 'status'), h('dd', {}, statusOf(stimulus, generation)),
    h('dt', {}, 'code norm'), h('dd', {}, codeNorm, rendered));
  el.replaceChildren(
    h('div', { class: 'dialog-head' }, h('h2', {}, `${stimulus.id} · ${name} · generation ${generation.number}`),
      h('button', { type: 'button', onclick: () => el.close(), 'aria-label': 'close' }, '×')),
    h('div', { class: 'detail' }, img, h('div', {}, facts, h('h3', {}, 'Counts per repetition'), countsTable(stimulus))));
  if (!el.open) el.showModal();
  codesOf(session.id, generation.number).then((found) => {
    const code = found.get(stimulus.id);
    codeNorm.textContent = code ? fmt(norm(code), 3) : '–';
  }, (err) => { codeNorm.textContent = `could not load: ${err.message}`; });
}
