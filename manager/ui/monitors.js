/* devsys console: checks and incidents (GET /v1/monitors, /v1/monitors/{name},
 * /v1/incidents): state, uptime, latency, probe history; silence and
 * unsilence for the roles that may. */
'use strict';

const pct = (v) => (v == null ? '-' : Number(v).toFixed(v >= 99.95 || v === 0 ? 0 : 2) + '%');
const ms = (v) => (v == null ? '-' : Math.round(v) + ' ms');

/* Silence for an hour / lift it: the same buttons on the list and a check's page. */
function silenceButtons(c) {
  const path = '/v1/monitors/' + enc(c.name) + '/silence';
  return c.silenced
    ? actButton('Unsilence', 'monitor.unsilence', () => api('DELETE', path))
    : confirmButton('Silence 1 h', 'monitor.silence', 'Silence ' + c.name + ' for an hour (no incidents open)?',
      () => api('POST', path, {for_s: 3600, reason: 'silenced from the console by ' + ds.session.actor}));
}

function silenceNote(c) {
  return c.silenced ? el('span', {class: 'state silenced', title: c.silence_reason || ''},
    'silenced until ' + new Date(c.silenced_until).toLocaleTimeString()) : null;
}

/* Probes as a strip of squares, oldest left: green ok, red failed, grey silenced. */
function probeStrip(probes) {
  return el('div', {class: 'strip'}, probes.slice().reverse().map((p) => el('i', {
    class: p.silenced ? 'silenced' : p.ok ? 'ok' : 'bad',
    title: p.at + (p.ok ? ' ok ' + ms(p.latency_ms) : ' ' + (p.error || 'failed'))})));
}

function incidentTable(list) {
  return table(['#', 'check', 'state', 'opened', 'lasted', 'failures', 'error', 'follow-up'], list.map((i) =>
    el('tr', {'data-incident': i.id, 'data-state': i.state}, el('td', {}, i.id),
      el('td', {}, el('a', {href: '#/monitor/' + enc(i.check)}, i.check)),
      el('td', {}, stateBadge(i.state === 'open' ? 'failing' : 'resolved'), ' ', i.resolution || ''),
      el('td', {}, when(i.opened_at)), el('td', {}, i.duration_s == null ? '-' : Math.round(i.duration_s) + ' s'),
      el('td', {}, i.failures), el('td', {class: 'mono'}, i.error || ''),
      el('td', {class: 'mono'}, i.follow_up_task ? el('a', {href: '#/task/' + i.follow_up_task},
        (i.follow_up_state || '') + ' ' + i.follow_up_task.slice(0, 8) + '…') : '-'))));
}

ds.pages.monitors = {every: 5000, render(view) {
  view.appendChild(el('h1', {}, 'Monitors'));
  const box = view.appendChild(el('div', {id: 'monitor-list'}));
  const inc = view.appendChild(el('div', {id: 'incident-list'}));
  return async (gen) => {
    const [r, i] = await Promise.all([api('GET', '/v1/monitors?limit=200'), api('GET', '/v1/incidents?limit=20')]);
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(box, r);
    if (!i.ok) return failed(inc, i);
    clear(box).append(table(['check', 'type', 'state', 'uptime 24 h', 'uptime 7 d', 'p50 / p95', 'last probe',
      'incident', ''], r.body.monitors.map((c) => el('tr', {'data-check': c.name, 'data-state': c.state,
      'data-silenced': c.silenced ? '1' : '0'},
      el('td', {}, el('a', {href: '#/monitor/' + enc(c.name)}, c.name)),
      el('td', {}, (c.monitor && c.monitor.type) || '-'),
      el('td', {}, stateBadge(c.state), ' ', silenceNote(c)),
      el('td', {class: 'uptime'}, pct(c.uptime_24h)), el('td', {}, pct(c.uptime_7d)),
      el('td', {}, ms(c.latency_p50_ms_24h) + ' / ' + ms(c.latency_p95_ms_24h)),
      el('td', {}, c.last_probe ? [when(c.last_probe.at), ' ', c.last_probe.ok ? 'ok'
        : el('span', {class: 'error mono'}, c.last_probe.error || 'failed')] : '-'),
      el('td', {}, c.open_incident ? el('a', {href: '#/monitor/' + enc(c.name)}, '#' + c.open_incident) : '-'),
      el('td', {class: 'actions'}, silenceButtons(c))))));
    clear(inc).append(el('h2', {}, 'Recent incidents'), incidentTable(i.body.incidents));
  };
}};

ds.pages.monitor = {every: 5000, render(view, name) {
  const head = view.appendChild(el('div'));
  const body = view.appendChild(el('div'));
  return async (gen) => {
    const r = await api('GET', '/v1/monitors/' + enc(name) + '?limit=100');
    if (gen !== ds.gen) return;
    if (!r.ok) return failed(body, r);
    const c = r.body;
    clear(head).append(el('h1', {}, 'Check ', c.name, ' ',
      el('span', {id: 'check-state', 'data-state': c.state}, stateBadge(c.state)), ' ', silenceNote(c)),
    el('div', {class: 'actions'}, silenceButtons(c)));
    const kv = (k, v) => [el('div', {}, k), el('div', {class: 'mono'}, v == null ? '-' : String(v))];
    clear(body).append(el('div', {class: 'cards'},
      el('div', {class: 'card'}, el('div', {class: 'n'}, pct(c.uptime_24h)), el('div', {class: 'l'}, 'uptime 24 h')),
      el('div', {class: 'card'}, el('div', {class: 'n'}, pct(c.uptime_7d)), el('div', {class: 'l'}, 'uptime 7 d')),
      el('div', {class: 'card'}, el('div', {class: 'n'}, ms(c.latency_p95_ms_24h)), el('div', {class: 'l'}, 'p95 24 h'))),
    el('div', {class: 'kv'}, kv('probe', JSON.stringify(c.monitor)), kv('every', c.interval_s + ' s'),
      kv('state since', c.state_since), kv('failures in a row', c.consecutive_failures),
      kv('next probe', c.next_due_at), kv('source', c.source)),
    el('h2', {}, 'Probes'), probeStrip(c.probes),
    table(['at', 'ok', 'latency', 'error'], c.probes.map((p) => el('tr', {'data-probe': p.id, 'data-ok': p.ok ? '1' : '0'},
      el('td', {}, when(p.at)), el('td', {}, p.silenced ? 'silenced' : p.ok ? 'ok' : stateBadge('failed')),
      el('td', {}, ms(p.latency_ms)), el('td', {class: 'mono'}, p.error || '')))),
    el('h2', {}, 'Incidents'), incidentTable(c.incidents));
  };
}};
