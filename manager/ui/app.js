/* devsys console: the core — DOM helpers, the API client (session cookie +
 * CSRF header), sign in/out, the hash router and the one polling timer.
 * Pages live in pages.js, the pipeline graph in dag.js. No build step. */
'use strict';

const ds = {
  session: null,  /* GET /v1/session: actor, role, csrf, can[] */
  pages: {},      /* name -> {render(view, arg, params) -> refresh fn or null, every: ms} */
  gen: 0,         /* bumped on every navigation: late answers of the old page are dropped */
  timer: null,
};

/* el('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child, [more]) */
function el(tag, attrs, ...kids) {
  const svg = ['svg', 'g', 'rect', 'path', 'text', 'polyline', 'line', 'circle', 'title', 'marker'].includes(tag);
  const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  const add = (k) => {
    if (k === null || k === undefined || k === false) return;
    if (Array.isArray(k)) k.forEach(add);
    else e.appendChild(typeof k === 'object' ? k : document.createTextNode(String(k)));
  };
  kids.forEach(add);
  return e;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

function ago(ts) {
  if (!ts) return '';
  const s = Math.round((Date.now() - new Date(ts).getTime()) / 1000);
  if (s < 0) return 'in ' + (-s) + 's';
  if (s < 90) return s + 's ago';
  if (s < 5400) return Math.round(s / 60) + 'm ago';
  if (s < 129600) return Math.round(s / 3600) + 'h ago';
  return Math.round(s / 86400) + 'd ago';
}

function when(ts) { return ts ? el('span', {title: ts}, ago(ts)) : el('span', {class: 'muted'}, '-'); }

function stateBadge(s) { return el('span', {class: 'state ' + (s || '')}, s || '-'); }

function toast(msg, isError) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = isError ? 'error' : '';
  t.hidden = false;
  clearTimeout(toast.t);
  toast.t = setTimeout(() => { t.hidden = true; }, 4000);
}

/* Every call of the console: same-origin /v1 routes, the session cookie sent
 * by the browser, the CSRF token on every change. Resolves {status, ok, body}. */
async function api(method, path, body, headers) {
  const h = Object.assign({}, headers || {});
  if (method !== 'GET' && ds.session && ds.session.csrf) h['X-CSRF-Token'] = ds.session.csrf;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(path, {method, headers: h, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body)});
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  if (r.status === 401 && !headers) signedOut('Your session ended: sign in again.');
  return {status: r.status, ok: r.ok, body: j};
}

/* Can the session's role do this audit action (route table's "can")? The API
 * decides anyway; this only hides what would be refused. */
function can(action) { return !!(ds.session && ds.session.can.includes(action)); }
function canPrefix(p) { return !!(ds.session && ds.session.can.some((a) => a.startsWith(p))); }

/* A button for an action the role has (else null): runs fn, reports, refreshes. */
function actButton(label, action, fn, cls) {
  if (!can(action)) return null;
  const b = el('button', {type: 'button', class: cls || '', 'data-action': action}, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      const r = await fn();
      if (r && !r.ok) toast(label + ': ' + ((r.body && r.body.error) || ('HTTP ' + r.status)), true);
      else if (r) toast(label + ': done');
    } finally {
      b.disabled = false;
      refreshNow();
    }
  });
  return b;
}

/* An action that asks first, in the page (no window.confirm). */
function confirmButton(label, action, question, fn, cls) {
  if (!can(action)) return null;
  const wrap = el('span', {class: 'confirm-wrap'});
  const b = el('button', {type: 'button', class: cls || '', 'data-action': action}, label);
  b.addEventListener('click', () => {
    if (wrap.querySelector('.confirm')) return;
    const yes = actButton('Confirm', action, fn, 'danger');
    yes.classList.add('confirm-yes');
    const box = el('div', {class: 'confirm'}, question, ' ', yes, ' ',
      el('button', {type: 'button', onclick: () => box.remove()}, 'Cancel'));
    wrap.appendChild(box);
  });
  wrap.appendChild(b);
  return wrap;
}

/* ----------------------------------------------------------- session */

function signedIn(s) {
  ds.session = s;
  document.cookie = 'devsys_ui=1; path=/ui; SameSite=Strict';
  document.getElementById('signin').hidden = true;
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = s.actor + ' (' + s.role + ')';
  document.getElementById('nav-audit').hidden = s.role !== 'admin';
  route();
}

function signedOut(msg) {
  ds.session = null;
  ds.gen++;
  clearTimeout(ds.timer);
  document.cookie = 'devsys_ui=; path=/ui; max-age=0; SameSite=Strict';
  document.getElementById('top').hidden = true;
  clear(document.getElementById('view'));
  document.getElementById('signin').hidden = false;
  document.getElementById('signin-error').textContent = msg || '';
}

async function signIn(ev) {
  ev.preventDefault();
  const input = document.getElementById('token');
  const r = await api('POST', '/v1/session', undefined, {Authorization: 'Bearer ' + input.value.trim()});
  input.value = '';
  if (r.status === 201) signedIn(r.body);
  else document.getElementById('signin-error').textContent =
    (r.body && r.body.error) || ('sign-in refused: HTTP ' + r.status);
}

async function signOut() {
  await api('DELETE', '/v1/session');
  signedOut('Signed out.');
}

/* ----------------------------------------------------------- routing */

function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, query] = h.split('?');
  const parts = path.split('/');
  return {page: parts[0] || 'overview', arg: decodeURIComponent(parts.slice(1).join('/')),
          params: new URLSearchParams(query || '')};
}

function go(page, arg, params) {
  const q = params && params.toString();
  location.hash = '#/' + page + (arg ? '/' + encodeURIComponent(arg) : '') + (q ? '?' + q : '');
}

function route() {
  if (!ds.session) return;
  const {page, arg, params} = parseHash();
  const p = ds.pages[page] || ds.pages.overview;
  ds.gen++;
  clearTimeout(ds.timer);
  document.querySelectorAll('#nav a').forEach((a) =>
    a.classList.toggle('active', a.dataset.page === page || (a.dataset.page + 's') === page ||
                      a.dataset.page === page.replace(/^task$/, 'tasks').replace(/^pipeline$/, 'pipelines').replace(/^monitor$/, 'monitors')));
  const view = clear(document.getElementById('view'));
  const refresh = p.render(view, arg, params);
  ds.current = {refresh, every: p.every || 3000, gen: ds.gen};
  poll(ds.gen);
}

/* One timer: each tick runs the open page's refresh (one small query), then
 * waits its interval; hidden tabs do not poll. */
async function poll(gen) {
  if (gen !== ds.gen || !ds.current || !ds.current.refresh) return;
  if (!document.hidden) {
    try { await ds.current.refresh(gen); } catch (e) { toast('refresh failed: ' + e.message, true); }
  }
  if (gen === ds.gen) ds.timer = setTimeout(() => poll(gen), ds.current.every);
}

function refreshNow() {
  if (!ds.current) return;
  clearTimeout(ds.timer);
  const gen = ++ds.gen;
  ds.current.gen = gen;
  poll(gen);
}

async function start() {
  document.getElementById('signin-form').addEventListener('submit', signIn);
  document.getElementById('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  /* probe the session only when this browser signed in before (no 401 noise) */
  if (document.cookie.split('; ').includes('devsys_ui=1')) {
    const r = await api('GET', '/v1/session', undefined, {});
    if (r.ok) { signedIn(r.body); return; }
  }
  signedOut('');
}

document.addEventListener('DOMContentLoaded', start);
