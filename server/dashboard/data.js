// What the pages read out of the server's answers: score summaries, step sizes, channel means, metadata as text.
'use strict';

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const number = (x) => (typeof x === 'number' ? x : null);

// The step size an optimizer reports in its summary: CMA-ES's sigma, or the sphere searches' angle (sphere-cma,
// metric-cma), whose steps are angles on the code sphere.
const STEP_SIZES = [['sigma', 'sigma'], ['angle_deg', 'angle, degrees']];

function stepSize(summary) {
  const found = STEP_SIZES.find(([key]) => summary && typeof summary[key] === 'number');
  return found ? { value: summary[found[0]], label: found[1] } : null;
}

// The score summary the server stored with each closed generation (evostim/summary.py, in the history among the
// generation's optimizer entries), drawn as it is: nothing is recomputed here. The best image is the first evolved
// stimulus that scored the summary's max, the one the server names.
export function summaryOf(generation) {
  const summary = generation.optimizer || {};
  if (generation.status !== 'closed' || number(summary.evolved_mean) === null) return null;
  const best = generation.stimuli.find((s) => s.kind === 'evolved' && s.score === summary.evolved_max) || null;
  return { x: generation.number, mean: summary.evolved_mean, sd: number(summary.evolved_sd), max: summary.evolved_max,
    ref: number(summary.reference_mean), best, step: stepSize(summary) };
}

// Multi-channel sessions: each channel's response (mean over repetitions) averaged over the evolved images.
export function channelMeans(generation, channel) {
  const values = generation.stimuli
    .filter((s) => s.kind === 'evolved' && s.counts && s.counts[channel] && s.counts[channel].length)
    .map((s) => mean(s.counts[channel]));
  return values.length ? { x: generation.number, y: mean(values) } : null;
}

// -- metadata ---------------------------------------------------------------------------------------------------
// A value as a person reads it: text as it is, anything else as compact JSON.
export function valueText(value) {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value).map(([k, v]) => `${k} ${valueText(v)}`).join(', ');
  }
  return JSON.stringify(value);
}

// [[key, text]] of a session's metadata, the ones a lab names sessions by first.
const FIRST = ['animal', 'array', 'channel', 'unit', 'notes'];

export function metadataEntries(metadata) {
  const entries = Object.entries(metadata || {}).filter(([, value]) => value !== null && value !== '');
  const rank = ([key]) => (FIRST.includes(key) ? FIRST.indexOf(key) : FIRST.length);
  return entries.sort((a, b) => rank(a) - rank(b)).map(([key, value]) => [key.replace(/_/g, ' '), valueText(value)]);
}

// A short name of a session for legends: its id's start and what the lab named it by.
export function sessionLabel(session) {
  const metadata = (session.config || {}).metadata || {};
  const named = ['animal', 'array', 'channel'].filter((k) => metadata[k] !== undefined).map((k) => valueText(metadata[k]));
  return [session.id.slice(0, 10), ...named].join(' · ');
}
