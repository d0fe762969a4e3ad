/* devsys console: the pages. Each render(view, arg, params) builds its frame
 * once and returns refresh(gen): one small API call that redraws the data part
 * (the poller in app.js calls it every `every` ms). */
'use strict';

const FINAL = ['succeeded', 'failed', 'dead', 'cancelled'];
const enc = encodeURIComponent;

function table(headers, rows) {
  return el('table', {}, el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', {colspan: headers.length, class: 'muted'}, 'none'))));
}

function failed(box, r) {
  clear(box).appendChild(el('p', {class: 'error'}, (r.body && r.body.error) || ('HTTP ' + r.status)));
}

/* ------------------------------------------------------------ overview */

/* Tasks per minute over the last hour as three SVG lines. */
function throughputChart(minutes) {
  const W = 1200, H = 160, P = 28, now = Date.now();
  const series = {submitted: '#2458c6', succeeded: '#1f8a4c', failed: '#c23a2b'};
  const byMin = new Map(minutes.map((m) => [Math.floor(new Date(m.t).getTime() / 60000), m]));
  const nowMin = Math.floor(now / 60000), pts = [];
  for (let i = 59; i >= 0; i--) pts.push(byMin.get(nowMin - i) || {submitted: 0, succeeded: 0, failed: 0});
  const max = Math.max(1, ...pts.map((p) => p.submitted));
  const svg = el('svg', {width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'throughput'});
  svg.appendChild(el('line', {x1: P, y1: H - P, x2: W - 4, y2: H - P, stroke: '#dde1ea'}));
  svg.appendChild(el('text', {x: 2, y: 14, fill: '#6b7385', 'font-size': 11}, String(max)));
  svg.appendChild(el('text', {x: 2, y: H - P, fill: '#6b7385', 'font-size': 11}, '0'));
  svg.appendChild(el('text', {x: P, y: H - 8, fill: '#6b7385', 'font-size': 11}, '60 min ago'));
  svg.appendChild(el('text', {x: W - 40, y: H - 8, fill: '#6b7385', 'font-size': 11}, 'now'));
  for (const [k, color] of Object.entries(series)) {
    const d = pts.map((p, i) => `${P + i * (W - P - 4) / 59},${H - P - (p[k] / max) * (H - P - 10)}`).join(' ');
    svg.appendChild(el('polyline', {points: d, fill: 'none', stroke: color, 'stroke-width': 2, 'data-series': k}));
  }
  const legend = el('div', {class: 'legend'}, Object.entries(series).map(([k, c]) => {
    const i = el('i');
    i.style.background = c;
    return el('span', {}, i, k + '/min');
  }));
  return el('div', {class: 'chart'}, legend, svg);
}

ds.pages.overview = {every: 5000, render(view) {
  view.appendChild(el('h1', {}, 'Overview'));
  const box = view.appendChild(el('div'));
  return async (gen) => {
    const r = await api('GET', '/v1/overview');
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(box, r);
    const o = r.body, sum = (k) => o.minutes.reduce((a, m) => a + m[k], 0);
    const live = (st) => o.live.filter((l) => l.state === st).reduce((a, l) => a + l.count, 0);
    const dead = Object.values(o.dead).reduce((a, n) => a + n, 0);
    const card = (n, l, id) => el('div', {class: 'card', 'data-card': id}, el('div', {class: 'n'}, n),
      el('div', {class: 'l'}, l));
    const queues = new Set([...o.live.map((l) => l.queue), ...Object.keys(o.dead)]);
    const rows = [...queues].sort().map((q) => {
      const of = (st) => o.live.find((l) => l.queue === q && l.state === st);
      const oldest = ['queued', 'retrying', 'running'].map(of).filter(Boolean)
        .map((l) => l.oldest).sort()[0];
      return el('tr', {}, el('td', {}, el('a', {href: '#/tasks?queue=' + enc(q)}, q)),
        ['queued', 'running', 'retrying'].map((st) => el('td', {}, of(st) ? of(st).count : 0)),
        el('td', {}, when(oldest)), el('td', {}, el('a', {href: '#/dlq/' + enc(q)}, o.dead[q] || 0)));
    });
    clear(box).append(
      el('div', {class: 'cards'}, card(sum('submitted'), 'submitted (last hour)', 'submitted'),
        card(sum('succeeded'), 'of them succeeded', 'succeeded'), card(sum('failed'), 'of them failed', 'failed'),
        card(live('running'), 'in flight', 'running'), card(live('queued') + live('retrying'), 'waiting', 'waiting'),
        card(o.agents, 'agents busy', 'agents'), card(dead, 'dead letters', 'dead')),
      throughputChart(o.minutes),
      el('h2', {}, 'Queues'),
      table(['queue', 'queued', 'running', 'retrying', 'oldest live', 'dead letters'], rows));
  };
}};

/* -------------------------------------------------------------- queues */

ds.pages.queues = {every: 5000, render(view) {
  view.appendChild(el('h1', {}, 'Queues'));
  const box = view.appendChild(el('div'));
  return async (gen) => {
    const r = await api('GET', '/v1/queues');
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(box, r);
    clear(box).appendChild(table(['queue', 'state', 'depth', 'in flight', 'delayed', 'dead letters', 'concurrency',
      'rate', ''], r.body.queues.map((q) => el('tr', {'data-queue': q.queue},
      el('td', {}, el('a', {href: '#/tasks?queue=' + enc(q.queue)}, q.queue)),
      el('td', {}, q.paused ? stateBadge('paused') : 'active'),
      ['depth', 'in_flight', 'delayed', 'dlq'].map((k) => el('td', {}, q.stats ? q.stats[k] : '-')),
      el('td', {}, q.concurrency == null ? '-' : q.concurrency),
      el('td', {}, q.rate ? q.rate.n + '/' + q.rate.period_s + 's' : '-'),
      el('td', {class: 'actions'}, q.paused
        ? actButton('Resume', 'queue.resume', () => api('POST', '/v1/queues/' + enc(q.queue) + '/resume'))
        : actButton('Pause', 'queue.pause', () => api('POST', '/v1/queues/' + enc(q.queue) + '/pause')))))));
  };
}};

/* --------------------------------------------------------------- tasks */

const SINCE = {'': 'any time', '1h': 'last hour', '24h': 'last 24 h', '7d': 'last 7 days'};
const SINCE_S = {'1h': 3600, '24h': 86400, '7d': 604800};

ds.pages.tasks = {every: 3000, render(view, arg, params) {
  view.appendChild(el('h1', {}, 'Tasks'));
  const f = {};
  const input = (k, ph, w) => (f[k] = el('input', {name: k, placeholder: ph, value: params.get(k) || '', size: w}));
  const state = f.state = el('select', {name: 'state'}, ['', 'queued', 'running', 'retrying', 'succeeded',
    'failed', 'dead', 'cancelled'].map((s) => el('option', {value: s, selected: params.get('state') === s},
    s || 'any state')));
  const since = f.since = el('select', {name: 'since'}, Object.entries(SINCE).map(([k, v]) =>
    el('option', {value: k, selected: (params.get('since') || '') === k}, v)));
  const form = el('form', {class: 'filters', id: 'task-filters'},
    input('q', 'search spec and errors', 30), state, input('queue', 'queue', 10), input('tag', 'tag', 10),
    input('name', 'name or prefix*', 14), since, el('button', {type: 'submit', class: 'primary'}, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, e] of Object.entries(f)) if (e.value.trim()) p.set(k, e.value.trim());
    go('tasks', '', p);
  });
  view.appendChild(form);
  const box = view.appendChild(el('div', {id: 'task-list'}));
  const query = new URLSearchParams();
  for (const k of ['q', 'state', 'queue', 'tag', 'name', 'after'])
    if (params.get(k)) query.set(k, params.get(k));
  if (SINCE_S[params.get('since')])
    query.set('since', String(Math.floor(Date.now() / 1000) - SINCE_S[params.get('since')]));
  query.set('limit', '50');
  return async (gen) => {
    const r = await api('GET', '/v1/tasks?' + query.toString());
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(box, r);
    const rows = r.body.tasks.map((t) => el('tr', {'data-task': t.id, 'data-state': t.state},
      el('td', {class: 'mono'}, el('a', {href: '#/task/' + t.id}, t.id.slice(0, 13) + '…')),
      el('td', {}, t.name || el('span', {class: 'muted'}, '-')), el('td', {}, t.kind), el('td', {}, t.queue),
      el('td', {}, stateBadge(t.state)), el('td', {}, t.attempt + '/' + t.max_attempts),
      el('td', {}, when(t.created_at)), el('td', {class: 'mono'}, (t.last_error || '').slice(0, 80))));
    const pager = el('div', {class: 'pager'});
    if (params.get('after')) {
      const p = new URLSearchParams(params);
      p.delete('after');
      pager.appendChild(el('a', {href: '#/tasks?' + p}, '« newest'));
    }
    if (r.body.next) {
      const p = new URLSearchParams(params);
      p.set('after', r.body.next);
      pager.appendChild(el('a', {href: '#/tasks?' + p, id: 'next-page'}, 'older »'));
    }
    clear(box).append(table(['task', 'name', 'kind', 'queue', 'state', 'attempt', 'created', 'last error'], rows),
      pager);
  };
}};

/* A task page: attempts, output tail, result, checkpoints, report; cancel,
 * retry (a dead or cancelled task, not a pipeline's: those re-run with their
 * pipeline). While it is not final it is read again every second (one
 * call); checkpoints and the report are read when its state changes. */
ds.pages.task = {every: 1500, render(view, id) {
  const head = view.appendChild(el('div'));
  const body = view.appendChild(el('div'));
  const extra = view.appendChild(el('div'));
  let lastState = null, finished = false;
  return async (gen) => {
    if (finished) return;
    const r = await api('GET', '/v1/tasks/' + enc(id));
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(body, r);
    const t = r.body;
    finished = FINAL.includes(t.state);
    clear(head).append(el('h1', {}, 'Task ', el('span', {class: 'mono'}, t.id), ' ',
      el('span', {id: 'task-state', 'data-state': t.state}, stateBadge(t.state))),
    el('div', {class: 'actions'},
      !finished ? actButton('Cancel', 'task.cancel', () => api('POST', '/v1/tasks/' + enc(t.id) + '/cancel'),
        'danger') : null,
      ['dead', 'cancelled'].includes(t.state) && !(t.spec && t.spec.pipeline) ? actButton('Retry', 'task.retry',
        async () => { finished = false; return api('POST', '/v1/tasks/' + enc(t.id) + '/retry'); }) : null));
    const attempts = (t.attempts || []).map((a) => el('tr', {},
      el('td', {}, a.attempt), el('td', {}, a.agent || '-'), el('td', {}, stateBadge(a.outcome)),
      el('td', {}, when(a.started_at)),
      el('td', {}, a.finished_at && a.started_at
        ? ((new Date(a.finished_at) - new Date(a.started_at)) / 1000).toFixed(2) + ' s' : '-'),
      el('td', {class: 'mono'}, a.error || '')));
    const kv = (k, v) => [el('div', {}, k), el('div', {class: 'mono'}, v == null ? '-' : String(v))];
    clear(body).append(el('div', {class: 'row'},
      el('div', {class: 'kv'}, kv('queue', t.queue), kv('kind', t.kind), kv('name', t.spec && t.spec.name),
        kv('attempt', t.attempt + ' of ' + t.max_attempts), kv('created', t.created_at),
        kv('started', t.started_at), kv('finished', t.finished_at), kv('lease', t.lease_owner),
        kv('last error', t.last_error))),
    el('h2', {}, 'Attempts'), table(['#', 'agent', 'outcome', 'started', 'took', 'error'], attempts),
    el('h2', {}, 'Output tail'), el('pre', {id: 'output-tail'}, t.output_tail || '(none)'),
    el('h2', {}, 'Result'), el('pre', {}, t.result == null ? '(none)' : JSON.stringify(t.result, null, 2)),
    el('h2', {}, 'Spec'), el('pre', {id: 'task-spec'}, JSON.stringify(t.spec, null, 2)));
    if (t.state !== lastState) {
      lastState = t.state;
      const c = await api('GET', '/v1/tasks/' + enc(t.id) + '/checkpoints');
      if (gen !== ds.gen) return;
      const parts = [el('h2', {}, 'Checkpoints'), el('pre', {}, c.ok && c.body.checkpoints.length
        ? JSON.stringify(c.body.checkpoints, null, 2) : '(none)')];
      if (t.kind === 'testing' && finished && t.result && t.result.tests !== undefined) {
        parts.push(el('h2', {}, 'Test report'), el('pre', {}, JSON.stringify(t.result, null, 2)),
          el('a', {href: '/v1/tasks/' + enc(t.id) + '/report', target: '_blank'}, 'JUnit XML'));
      }
      clear(extra).append(...parts);
    }
  };
}};

/* -------------------------------------------------------- dead letters */

/* A bulk action over the groups' filter (POST .../replay or DELETE with
 * ?error=&kind=&since=): reports its counts, at most 1000 per click. */
async function dlqBulk(method, queue, filter) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
  const r = await api(method, '/v1/dlq/' + enc(queue) + (method === 'POST' ? '/replay' : '') +
    (q.toString() ? '?' + q : ''));
  if (!r.ok) return r;
  const b = r.body;
  const msg = method === 'POST'
    ? `replayed ${b.replayed} (published ${b.published}, invalid ${b.failed_count})`
    : `purged ${b.purged} (letters removed ${b.entries_removed})`;
  toast(b.more ? msg + '; more match: run it again' : msg);
  return null;
}

ds.pages.dlq = {every: 4000, render(view, queue, params) {
  view.appendChild(el('h1', {}, 'Dead letters'));
  const tabs = view.appendChild(el('div', {class: 'filters'}));
  const sinceKey = params.get('since') || '';
  const sinceSel = el('select', {name: 'since', id: 'dlq-since'}, Object.entries(SINCE).map(([k, v]) =>
    el('option', {value: k, selected: sinceKey === k}, 'failed ' + v)));
  sinceSel.addEventListener('change', () => {
    const p = new URLSearchParams();
    if (sinceSel.value) p.set('since', sinceSel.value);
    go('dlq', queue || '', p);
  });
  view.appendChild(el('div', {class: 'filters'}, sinceSel));
  const groupsBox = view.appendChild(el('div', {id: 'dlq-groups'}));
  const box = view.appendChild(el('div', {id: 'dlq-list'}));
  const replay = (q, e) => api('POST', '/v1/dlq/' + enc(q) + '/' + enc(e) + '/replay');
  const purge = (q, e) => api('DELETE', '/v1/dlq/' + enc(q) + '/' + enc(e));
  const since = SINCE_S[sinceKey] ? String(Math.floor(Date.now() / 1000) - SINCE_S[sinceKey]) : '';
  return async (gen) => {
    const qs = await api('GET', '/v1/dlq');
    if (gen !== ds.gen) return;
    if (!qs.ok) return failed(box, qs);
    const names = qs.body.queues.map((q) => q.queue);
    const cur = queue || names[0];
    clear(tabs).append(...qs.body.queues.map((q) => el('a', {href: '#/dlq/' + enc(q.queue),
      class: q.queue === cur ? 'active' : ''}, q.queue + ' (' + q.length + ')')));
    if (!cur) {
      clear(groupsBox);
      return clear(box).appendChild(el('p', {class: 'muted'}, 'No dead letters.'));
    }
    const [g, r] = await Promise.all([
      api('GET', '/v1/dlq/' + enc(cur) + '/groups' + (since ? '?since=' + since : '')),
      api('GET', '/v1/dlq/' + enc(cur) + '?limit=200')]);
    if (gen !== ds.gen) return;
    if (!g.ok) return failed(groupsBox, g);
    if (!r.ok) return failed(box, r);
    const when_ = since ? ' failed ' + SINCE[sinceKey] : '';
    clear(groupsBox).append(el('div', {class: 'actions'},
      confirmButton('Replay all', 'dlq.replay', 'Replay every dead letter of ' + cur + when_ + ' (up to 1000)?',
        () => dlqBulk('POST', cur, {since})),
      confirmButton('Purge all', 'dlq.purge', 'Delete every dead letter of ' + cur + when_ + ' for good?',
        () => (since ? dlqBulk('DELETE', cur, {since}) : api('DELETE', '/v1/dlq/' + enc(cur))), 'danger')),
    el('h2', {}, 'By error'),
    table(['error', 'kind', 'letters', 'first failed', 'last failed', ''], g.body.groups.map((x) => {
      const f = {error: x.error, kind: x.kind, since};
      const what = x.count + ' dead letter' + (x.count === 1 ? '' : 's') + ' of ' + cur + ' failing with "' +
        x.error + '"' + when_;
      return el('tr', {'data-group': x.error || '', 'data-count': x.count},
        el('td', {class: 'mono'}, x.error || el('span', {class: 'muted'}, '(no error)')), el('td', {}, x.kind),
        el('td', {}, x.count), el('td', {}, when(x.first_failed_at)), el('td', {}, when(x.last_failed_at)),
        el('td', {class: 'actions'}, x.error ? [
          confirmButton('Replay ' + x.count, 'dlq.replay', 'Replay the ' + what + '?', () => dlqBulk('POST', cur, f)),
          confirmButton('Purge ' + x.count, 'dlq.purge', 'Delete the ' + what + ' for good?',
            () => dlqBulk('DELETE', cur, f), 'danger')] : null));
    })));
    const groups = new Map();
    for (const e of r.body.entries) {
      const k = e.error || '(no error)';
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(e);
    }
    clear(box);
    for (const [err, entries] of groups) {
      box.append(el('h2', {class: 'dlq-group'}, el('span', {class: 'mono'}, err), ' ',
        el('span', {class: 'muted'}, '× ' + entries.length)),
      table(['task', 'kind', 'attempts', 'agent', 'failed', ''], entries.map((e) => el('tr', {'data-task': e.id},
        el('td', {class: 'mono'}, el('a', {href: '#/task/' + e.id}, e.id)), el('td', {}, e.kind),
        el('td', {}, e.attempts), el('td', {}, e.agent || '-'), el('td', {}, when(e.failed_at)),
        el('td', {class: 'actions'}, actButton('Replay', 'dlq.replay', () => replay(cur, e.entry_id || e.id)),
          confirmButton('Purge', 'dlq.purge', 'Delete this dead letter?', () => purge(cur, e.entry_id || e.id),
            'danger'))))));
    }
    if (r.body.next) box.append(el('p', {class: 'muted'}, 'Showing the first 200.'));
  };
}};

/* ----------------------------------------------------------- pipelines */

ds.pages.pipelines = {every: 3000, render(view, arg, params) {
  view.appendChild(el('h1', {}, 'Pipelines'));
  const box = view.appendChild(el('div'));
  const after = params.get('after');
  return async (gen) => {
    const r = await api('GET', '/v1/pipelines?limit=50' + (after ? '&after=' + enc(after) : ''));
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(box, r);
    clear(box).append(table(['pipeline', 'name', 'state', 'steps', 'runs', 'by', 'created'],
      r.body.pipelines.map((p) => el('tr', {'data-pipeline': p.id},
        el('td', {class: 'mono'}, el('a', {href: '#/pipeline/' + p.id}, p.id.slice(0, 13) + '…')),
        el('td', {}, p.name || '-'), el('td', {}, stateBadge(p.state)),
        el('td', {}, Object.entries(p.steps || {}).map(([k, v]) => k + ' ' + v).join(', ')),
        el('td', {}, p.runs), el('td', {}, p.created_by || '-'), el('td', {}, when(p.created_at))))),
    r.body.next ? el('div', {class: 'pager'}, el('a', {href: '#/pipelines?after=' + enc(r.body.next)}, 'older »'))
      : null);
  };
}};

/* The approval of a waiting step, as GET /v1/pipelines/{id} names it. */
function approvalId(s) {
  return (s.approval && s.approval.id) || s.approval_id ||
    (s.nodes || []).map((n) => (n.approval && n.approval.id) || n.approval_id).find(Boolean) || null;
}

async function decide(id, decision) {
  const r = await api('POST', '/v1/approvals/' + enc(id), {decision});
  if (r.status === 404) ds.noApprovals = true; /* this manager has no approvals route */
  return r;
}

ds.pages.pipeline = {every: 2000, render(view, id) {
  const head = view.appendChild(el('div'));
  const graph = view.appendChild(el('div', {class: 'dag', id: 'dag'}));
  const body = view.appendChild(el('div'));
  return async (gen) => {
    const r = await api('GET', '/v1/pipelines/' + enc(id));
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(body, r);
    const p = r.body, done = FINAL.includes(p.state);
    clear(head).append(el('h1', {}, 'Pipeline ', p.name || '', ' ',
      el('span', {id: 'pipeline-state', 'data-state': p.state}, stateBadge(p.state))),
    el('p', {class: 'muted mono'}, p.id + ' · run ' + p.runs + ' · by ' + (p.created_by || '-')),
    el('div', {class: 'actions'},
      done ? actButton('Re-run failed steps', 'pipeline.rerun', () => api('POST', '/v1/pipelines/' + enc(p.id) +
        '/rerun')) : confirmButton('Cancel', 'pipeline.cancel', 'Cancel every unfinished step?',
        () => api('POST', '/v1/pipelines/' + enc(p.id) + '/cancel'), 'danger')));
    clear(graph).appendChild(drawDag(p.steps));
    const rows = p.steps.map((s) => {
      const aid = s.state === 'waiting_approval' && !ds.noApprovals && canPrefix('approval') ? approvalId(s) : null;
      return el('tr', {'data-step': s.step, 'data-state': s.state}, el('td', {}, s.step),
        el('td', {}, stateBadge(s.state)), el('td', {}, (s.needs || []).join(', ') || '-'),
        el('td', {}, s.if), el('td', {}, s.duration_s != null ? s.duration_s.toFixed(1) + ' s' : '-'),
        el('td', {class: 'actions'}, aid ? [
          el('button', {type: 'button', class: 'primary', 'data-action': 'approve',
            onclick: async () => { const x = await decide(aid, 'approve'); toast('approve: HTTP ' + x.status); refreshNow(); }},
          'Approve'),
          el('button', {type: 'button', class: 'danger', 'data-action': 'reject',
            onclick: async () => { const x = await decide(aid, 'reject'); toast('reject: HTTP ' + x.status); refreshNow(); }},
          'Reject')] : null));
    });
    clear(body).append(el('h2', {}, 'Steps'), table(['step', 'state', 'needs', 'if', 'took', ''], rows));
  };
}};

/* --------------------------------------------------------- deployments */

ds.pages.deploys = {every: 3000, render(view, arg, params) {
  view.appendChild(el('h1', {}, 'Deployments'));
  const app = params.get('app') || '';
  const appIn = el('input', {name: 'app', placeholder: 'app', value: app, size: 16});
  const envIn = el('input', {name: 'env', placeholder: 'env (all)', value: params.get('env') || '', size: 12});
  const form = el('form', {class: 'filters', id: 'deploy-filters'}, appIn, envIn,
    el('button', {type: 'submit', class: 'primary'}, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (appIn.value.trim()) p.set('app', appIn.value.trim());
    if (envIn.value.trim()) p.set('env', envIn.value.trim());
    go('deploys', '', p);
  });
  view.appendChild(form);
  const box = view.appendChild(el('div', {id: 'revisions'}));
  if (!app) {
    box.appendChild(el('p', {class: 'muted'}, 'Name an app to see its revisions per environment.'));
    return null;
  }
  const env = params.get('env');
  return async (gen) => {
    const r = await api('GET', '/v1/apps/' + enc(app) + '/revisions?limit=50' + (env ? '&env=' + enc(env) : ''));
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(box, r);
    const cur = r.body.current || {};
    clear(box).append(el('div', {class: 'cards'}, Object.entries(cur).map(([e, rev]) =>
      el('div', {class: 'card', 'data-env': e}, el('div', {class: 'l'}, e + ' is at'),
        el('div', {class: 'mono current-rev'}, rev || '-')))),
    table(['env', 'revision', 'action', 'outcome', 'switched', 'by', 'task', ''], r.body.revisions.map((d) =>
      el('tr', {'data-revision': d.revision, 'data-current': d.current ? '1' : '0'},
        el('td', {}, d.env), el('td', {class: 'mono'}, d.revision, d.current ? ' ◀ current' : ''),
        el('td', {}, d.action), el('td', {}, stateBadge(d.outcome || d.task_state)),
        el('td', {}, when(d.switched_at)), el('td', {}, d.deployed_by || '-'),
        el('td', {class: 'mono'}, el('a', {href: '#/task/' + d.task_id}, d.task_id.slice(0, 13) + '…')),
        el('td', {}, !d.current && d.outcome === 'succeeded' && d.revision ? confirmButton('Roll back',
          'app.rollback', 'Switch ' + app + '/' + d.env + ' to ' + d.revision + '?',
          () => api('POST', '/v1/apps/' + enc(app) + '/rollback', {env: d.env, revision: d.revision})) : null)))));
  };
}};

/* --------------------------------------------------------------- audit */

ds.pages.audit = {every: 5000, render(view, arg, params) {
  view.appendChild(el('h1', {}, 'Audit trail'));
  const f = {};
  const input = (k, ph) => (f[k] = el('input', {name: k, placeholder: ph, value: params.get(k) || '', size: 16}));
  const form = el('form', {class: 'filters', id: 'audit-filters'}, input('actor', 'actor'),
    input('action', 'action'), input('target', 'target'), input('since', 'since (2026-12-02)'),
    el('button', {type: 'submit', class: 'primary'}, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, e] of Object.entries(f)) if (e.value.trim()) p.set(k, e.value.trim());
    go('audit', '', p);
  });
  view.appendChild(form);
  const box = view.appendChild(el('div', {id: 'audit-list'}));
  const query = new URLSearchParams();
  for (const k of ['actor', 'action', 'target', 'since', 'after']) if (params.get(k)) query.set(k, params.get(k));
  query.set('limit', '100');
  return async (gen) => {
    const r = await api('GET', '/v1/audit?' + query);
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(box, r);
    const next = new URLSearchParams(params);
    if (r.body.next) next.set('after', r.body.next);
    clear(box).append(table(['at', 'actor', 'role', 'action', 'target', 'outcome', 'from', 'request'],
      r.body.entries.map((e) => el('tr', {'data-action': e.action},
        el('td', {}, when(e.at)), el('td', {}, e.actor), el('td', {}, e.role || '-'), el('td', {}, e.action),
        el('td', {class: 'mono'}, e.target || '-'), el('td', {}, e.outcome), el('td', {}, e.remote || '-'),
        el('td', {class: 'mono'}, e.request_id || '-')))),
    r.body.next ? el('div', {class: 'pager'}, el('a', {href: '#/audit?' + next}, 'older »')) : null);
  };
}};
