// What a session page lets a person do: stop, resume, fork, download (the history as CSV, the exports), notes.
// Changes are offered only to a token that may make them (GET /v1/access); a read-only token may still download.
'use strict';

import { download, getJSON, h, newKey, sendJSON, timeText } from './core.js';

const EXPORTS = [['csv', 'CSV'], ['npz', 'npz'], ['parquet', 'Parquet'], ['nwb', 'NWB']];

export class Actions {
  constructor(id, rights, refresh) {
    this.id = id;
    this.path = `/v1/sessions/${encodeURIComponent(id)}`;
    this.refresh = refresh;
    this.canWrite = rights.can_write;
    this.status = h('span', { class: 'muted', id: 'action-status', role: 'status' });
    this.stop = h('button', { type: 'button', id: 'stop', hidden: true, onclick: () => this.lifecycle('stop') }, 'Stop');
    this.resume = h('button', { type: 'button', id: 'resume', hidden: true, onclick: () => this.lifecycle('resume') }, 'Resume');
    this.forkButton = h('button', { type: 'button', id: 'fork', hidden: true, onclick: () => this.openFork() }, 'Fork…');
    this.form = h('form', { id: 'fork-form', class: 'card fork', hidden: true, onsubmit: (e) => { e.preventDefault(); this.fork(); } });
    const downloads = EXPORTS.map(([format, label]) => h('button', { type: 'button', 'data-format': format,
      title: `download the session as ${label}`, onclick: () => this.download(format) }, label));
    this.element = h('div', { id: 'actions' },
      h('div', { class: 'actions' }, this.stop, this.resume, this.forkButton,
        h('span', { class: 'downloads' }, h('span', { class: 'muted' }, 'download'), ...downloads), this.status),
      this.form);
  }

  update(session) {
    this.session = session;
    this.stop.hidden = !this.canWrite || session.status !== 'running';
    this.resume.hidden = !this.canWrite || session.status !== 'stopped';
    this.forkButton.hidden = !this.canWrite;
  }

  say(text, error = false) {
    this.status.textContent = text;
    this.status.className = error ? 'error' : 'muted';
  }

  async act(what, work) {
    this.say(`${what}…`);
    try {
      this.say(await work());
    } catch (err) {
      this.say(`${what}: ${err.message}`, true);
    }
  }

  lifecycle(verb) {
    return this.act(verb === 'stop' ? 'stopping' : 'resuming', async () => {
      const session = await sendJSON('POST', `${this.path}/${verb}`);
      this.update(session);
      await this.refresh();
      return `${verb === 'stop' ? 'stopped' : 'resumed'} at ${timeText(session.last_activity)}`;
    });
  }

  download(format) {
    return this.act(`exporting ${format}`, async () => {
      await download(`${this.path}/export?format=${format}`, `${this.id}.${format}`);
      return `saved ${this.id}.${format}`;
    });
  }

  // The fork's form: another optimizer (or the same), how many best codes, up to which generation.
  async openFork() {
    this.key = newKey(); // one fork per opening of the form, however often it is sent
    const config = this.session.config;
    const same = `same (${config.optimizer.name})`;
    const select = h('select', { name: 'optimizer' }, h('option', { value: '' }, same));
    const field = (label, input) => h('label', {}, label, input);
    const number = (name, attrs) => h('input', { type: 'number', name, min: 0, step: 1, ...attrs });
    this.form.replaceChildren(h('h2', {}, 'Fork: a new session from this one\'s best codes'),
      h('div', { class: 'fields' }, field('optimizer', select), field('best codes', number('best', { min: 1, max: 1000, value: 1 })),
        field('up to generation', number('generation', { placeholder: 'all', max: this.session.generation })),
        field('max generations', number('max_generations', { min: 1, placeholder: 'none' })),
        h('button', { type: 'submit' }, 'Create fork'), h('button', { type: 'button', onclick: () => { this.form.hidden = true; } }, 'Cancel')));
    this.form.hidden = false;
    try {
      const listed = await getJSON(`/v1/optimizers?generator=${encodeURIComponent(config.generator)}`);
      select.append(...listed.data.filter((o) => o.available).map((o) => h('option', { value: o.name }, o.name)));
    } catch { /* the parent's optimizer is still offered */ }
  }

  fork() {
    const data = new FormData(this.form);
    const body = { best: Number(data.get('best') || 1) };
    if (data.get('optimizer')) body.optimizer = { name: data.get('optimizer') };
    for (const key of ['generation', 'max_generations']) if (data.get(key) !== '') body[key] = Number(data.get(key));
    if (this.forking) return null; // a double click: the first one's answer is coming
    this.forking = true;
    return this.act('forking', async () => {
      const created = await sendJSON('POST', `${this.path}/fork`, body, this.key);
      location.hash = `#/sessions/${created.session.id}`;
      return `forked: ${created.session.id}`;
    }).finally(() => { this.forking = false; });
  }
}

// The session's notes (metadata.notes), saved by PATCH /v1/sessions/{id}; a read-only token reads them.
export class Notes {
  constructor(id, rights, refresh) {
    this.path = `/v1/sessions/${encodeURIComponent(id)}`;
    this.refresh = refresh;
    this.loaded = null;
    this.status = h('span', { class: 'muted', id: 'notes-status', role: 'status' });
    if (rights.can_write) {
      this.text = h('textarea', { id: 'notes', rows: 4, placeholder: 'what happened in this session: the cell, the rig, what to try next…' });
      this.text.addEventListener('input', () => { this.status.textContent = this.text.value === this.loaded ? '' : 'not saved'; });
      const save = h('button', { type: 'button', id: 'save-notes', onclick: () => this.save() }, 'Save notes');
      this.element = h('div', { class: 'card', id: 'notes-card' }, h('h2', {}, 'Notes'), this.text, h('div', { class: 'actions' }, save, this.status));
    } else {
      this.text = h('p', { id: 'notes', class: 'notes' });
      this.element = h('div', { class: 'card', id: 'notes-card' }, h('h2', {}, 'Notes'), this.text);
    }
  }

  // The stored notes, unless the person is editing them.
  update(session) {
    const stored = (session.config.metadata || {}).notes;
    const notes = stored === undefined || stored === null ? '' : typeof stored === 'string' ? stored : JSON.stringify(stored);
    if (this.text.tagName === 'P') this.text.textContent = notes || 'none';
    else if (this.loaded === null || this.text.value === this.loaded) this.text.value = notes;
    this.loaded = notes;
  }

  async save() {
    const notes = this.text.value;
    this.status.className = 'muted';
    this.status.textContent = 'saving…';
    try {
      const session = await sendJSON('PATCH', this.path, { metadata: { notes: notes === '' ? null : notes } });
      this.loaded = notes;
      this.update(session);
      this.status.textContent = `saved ${timeText(new Date().toISOString())}`;
      this.refresh();
    } catch (err) {
      this.status.className = 'error';
      this.status.textContent = `not saved: ${err.message}`;
    }
  }
}
