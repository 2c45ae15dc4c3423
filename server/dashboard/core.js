// The dashboard's plumbing: HTTP with the bearer token, DOM helpers, numbers and times, the header's badge.
'use strict';

const TOKEN_KEY = 'evostim.token';
const SVG_NS = 'http://www.w3.org/2000/svg';
let tokenAsked = false;
let accessAsked = null; // Promise<{role, can_write}> of this page load's token
const imageCache = new Map(); // image path -> Promise<object URL>; images never change

// -- HTTP ---------------------------------------------------------------------------------------------
function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function api(path, options = {}) {
  for (;;) {
    const headers = { ...authHeaders(), ...(options.headers || {}) };
    const res = await fetch(path, { ...options, headers });
    if (res.status !== 401 || tokenAsked) return res;
    tokenAsked = true; // ask once per page load
    const token = window.prompt('This evostim server needs a bearer token: a read-only one (EVOSTIM_READ_TOKENS, sees every session) or a rig\'s (EVOSTIM_TOKENS, sees its own):');
    if (!token) return res;
    localStorage.setItem(TOKEN_KEY, token.trim());
    accessAsked = null;
    showTokenControls();
  }
}

// The problem's detail (RFC 9457) of a refused request, or its status line.
async function failure(res) {
  let detail = res.statusText;
  try { detail = (await res.json()).detail || detail; } catch { /* not JSON */ }
  return new Error(`${res.status}: ${detail}`);
}

export async function getJSON(path, signal) {
  const res = await api(path, { signal });
  if (!res.ok) throw await failure(res);
  return res.json();
}

// A POST or PATCH with a JSON body (and an Idempotency-Key where the protocol takes one); the answer's JSON.
export async function sendJSON(method, path, body = undefined, key = null) {
  const headers = { ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...(key ? { 'Idempotency-Key': key } : {}) };
  const res = await api(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw await failure(res);
  return res.json();
}

// A key for one user action (crypto.randomUUID exists only in secure contexts; a lab server is often plain http).
export function newKey() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// What this token may do (GET /v1/access); a server without that endpoint is taken as letting it write.
export function access() {
  if (!accessAsked) {
    accessAsked = api('/v1/access').then((res) => (res.ok ? res.json() : { role: 'unknown', can_write: res.status === 404 }))
      .catch(() => ({ role: 'unknown', can_write: false }));
    accessAsked.then(showRole);
  }
  return accessAsked;
}

export function imageURL(path) {
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

// Saves what GET path answers as a file (a link cannot send the bearer token).
export async function download(path, filename) {
  const res = await api(path);
  if (!res.ok) throw await failure(res);
  const url = URL.createObjectURL(await res.blob());
  const link = h('a', { href: url, download: filename, hidden: '' });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// -- DOM helpers --------------------------------------------------------------------------------------
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (text !== null) el.textContent = text;
  return el;
}

export const fmt = (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toFixed(digits));
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- times: always with their zone ------------------------------------------------------------------------------
const pad = (n) => String(n).padStart(2, '0');

function zoneOf(date) {
  const parts = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(date);
  const zone = (parts.find((p) => p.type === 'timeZoneName') || {}).value || 'local time';
  return zone === 'GMT' || zone === 'GMT+0' ? 'UTC' : zone;
}

// "2026-05-01 14:03:07 CEST": local time and its zone; the UTC moment in its tooltip.
export function timeText(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${day} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneOf(d)}`;
}

export function when(iso) {
  const d = new Date(iso);
  return h('time', { datetime: iso, title: Number.isNaN(d.getTime()) ? '' : d.toISOString().replace('.000Z', 'Z') }, timeText(iso));
}

// -- header -------------------------------------------------------------------------------------------------
// The badge: 'live' (a running session's stream is open), 'stopped', 'finished', 'offline', or a word of progress.
export function setLive(state, text = null) {
  const el = document.getElementById('live');
  el.className = `live ${state}`;
  el.textContent = text || { on: 'live', off: 'offline' }[state] || state;
}

function showRole(info) {
  const el = document.getElementById('role');
  el.hidden = !info || info.role !== 'viewer';
  el.textContent = 'read-only';
  el.title = 'a read-only token (EVOSTIM_READ_TOKENS): it sees every session and changes none';
}

export function showTokenControls() {
  document.getElementById('forget-token').hidden = !localStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
  tokenAsked = false;
  accessAsked = null;
  showTokenControls();
}

// Calls fn now and every ms while the page is shown (a hidden tab asks nothing), and at once when it is shown again.
export async function every(ms, signal, fn) {
  let wake = null;
  const onVisible = () => { if (!document.hidden && wake) wake(); };
  document.addEventListener('visibilitychange', onVisible);
  signal.addEventListener('abort', () => { document.removeEventListener('visibilitychange', onVisible); if (wake) wake(); });
  while (!signal.aborted) {
    if (!document.hidden) await fn();
    await new Promise((resolve) => {
      wake = resolve;
      setTimeout(resolve, document.hidden ? 24 * 3600 * 1000 : ms);
    });
    wake = null;
  }
}
