// Server-sent events read with fetch (EventSource cannot send an Authorization header); reconnects when dropped.
'use strict';

import { api, sleep } from './core.js';

function parseEvent(block) {
  const data = block.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).replace(/^ /, ''));
  return data.length ? data.join('\n') : null;
}

// onState('open' | 'reconnecting' | 'refused: <status>'); onEvent(parsed JSON) for each event.
export async function follow(path, signal, onEvent, onState) {
  while (!signal.aborted) {
    try {
      const res = await api(path, { signal, headers: { Accept: 'text/event-stream' } });
      if (res.status === 404 || res.status === 401 || res.status === 403) { onState(`refused: ${res.status}`); return; }
      if (!res.ok) throw new Error(String(res.status)); // 429/503: too many streams now; try again later
      onState('open');
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
    onState('reconnecting');
    await sleep(2000);
  }
}
