// evostim dashboard: plain JS modules, no build step, nothing fetched from outside this server.
// Routes: #/ (sessions), #/sessions/<id> (one session, live via GET /v1/sessions/<id>/events),
// #/compare/<id>,<id>,... (several sessions' score curves on one plot).
'use strict';

import { comparePage } from './compare.js';
import { access, forgetToken, showTokenControls } from './core.js';
import { listPage } from './list.js';
import { sessionPage } from './session.js';

let page = null; // AbortController of the page on screen

function route() {
  if (page) page.abort();
  page = new AbortController();
  const session = location.hash.match(/^#\/sessions\/([^/]+)$/);
  const compare = location.hash.match(/^#\/compare\/([^/]+)$/);
  if (session) sessionPage(decodeURIComponent(session[1]), page.signal);
  else if (compare) comparePage(decodeURIComponent(compare[1]).split(',').filter(Boolean), page.signal);
  else listPage(page.signal);
}

document.getElementById('forget-token').addEventListener('click', () => {
  forgetToken();
  route();
});
window.addEventListener('hashchange', route);
showTokenControls();
access().finally(route); // the token's rights first: a server with tokens asks for one once, before anything else
