// tests/integration/ui_browser.js: drives the web console in Debian's chromium
// (headless, puppeteer-core from build/npm-ui) for ui_browser.test.sh. Prints
// one line per check: "PASS desc", "FAIL desc: why" or "SKIP desc: why".
// Any console error, page error, failed request or HTTP error answer the
// console did not expect fails the run. Environment: UI_URL, OP_TOKEN,
// VIEWER_TOKEN, ADMIN_TOKEN, DEAD_TASK, DEAD_QUEUE, FIX_FILE, APP, ENV,
// PREV_REV, BULK_TASKS, RETRY_TASK, PURGE_TASKS (space-separated task ids),
// SHOTS (screenshot directory), CHROMIUM, PROFILE (a fresh dir).
'use strict';
const fs = require('fs');
const puppeteer = require('puppeteer-core');

const E = process.env;
const URL_ = E.UI_URL;
let failures = 0;
const pass = (d) => console.log('PASS ' + d);
const fail = (d, why) => { failures++; console.log('FAIL ' + d + ': ' + String(why).split('\n')[0]); };
const skip = (d, why) => console.log('SKIP ' + d + ': ' + why);

async function check(desc, fn) {
  try { await fn(); pass(desc); } catch (e) { fail(desc, e && e.message ? e.message : e); }
}

function assert(c, msg) { if (!c) throw new Error(msg); }

async function api(method, path, token, body, cookie, csrf) {
  const h = {};
  if (token) h.Authorization = 'Bearer ' + token;
  if (cookie) h.Cookie = cookie;
  if (csrf) h['X-CSRF-Token'] = csrf;
  if (body) h['Content-Type'] = 'application/json';
  const r = await fetch(URL_ + path, {method, headers: h, body: body ? JSON.stringify(body) : undefined});
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  return {status: r.status, body: j};
}

async function until(desc, fn, ms) {
  const end = Date.now() + (ms || 10000);
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e.message; }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(desc + ' (timed out; last: ' + JSON.stringify(last) + ')');
}

/* A page that records every console error, page error, failed request and
 * error answer. */
async function watched(ctx, who) {
  const page = await ctx.newPage();
  await page.setViewport({width: 1280, height: 800});
  page.problems = [];
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(who + ' console: ' + m.text()); });
  page.on('pageerror', (e) => page.problems.push(who + ' page error: ' + e.message));
  page.on('requestfailed', (r) => page.problems.push(who + ' request failed: ' + r.url() + ' ' +
    (r.failure() ? r.failure().errorText : '')));
  page.on('response', (r) => { if (r.status() >= 400) page.problems.push(who + ' HTTP ' + r.status() + ' ' + r.url()); });
  return page;
}

async function signIn(page, token) {
  await page.goto(URL_ + '/ui/', {waitUntil: 'domcontentloaded'});
  await page.waitForSelector('#token', {visible: true});
  await page.type('#token', token);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#top:not([hidden])', {timeout: 5000});
}

async function shot(page, name) {
  await new Promise((r) => setTimeout(r, 250));
  await page.screenshot({path: E.SHOTS + '/' + name + '.png'});
}

async function visit(page, hash, selector) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  if (selector) await page.waitForSelector(selector, {timeout: 8000});
}

async function cookieOf(page) {
  const c = (await page.cookies(URL_ + '/v1/session')).find((x) => x.name === 'devsys_session');
  return c ? c : null;
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: E.CHROMIUM || '/usr/bin/chromium', headless: true, userDataDir: E.PROFILE,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--window-size=1280,800'],
  });
  const op = await watched(await browser.createBrowserContext(), 'operator');
  let opCookie = null, session = null;

  await check('an operator signs in with a token; the session is an HttpOnly SameSite=Strict cookie', async () => {
    await signIn(op, E.OP_TOKEN);
    const c = await cookieOf(op);
    assert(c, 'no devsys_session cookie');
    assert(c.httpOnly && c.sameSite === 'Strict', 'cookie flags: ' + JSON.stringify(c));
    assert(!(await op.evaluate(() => document.cookie)).includes('devsys_session'), 'session visible to JS');
    assert(await op.evaluate(() => localStorage.length === 0 && sessionStorage.length === 0), 'web storage used');
    opCookie = 'devsys_session=' + c.value;
    session = (await api('GET', '/v1/session', null, null, opCookie)).body;
    assert(session && session.role === 'operator', 'session: ' + JSON.stringify(session));
    await op.evaluate(() => { window.__noReload = 1; });
  });

  await check('overview shows the counters and the throughput chart', async () => {
    await visit(op, '#/overview', '[data-card=submitted]');
    await op.waitForSelector('svg.throughput polyline[data-series=succeeded]');
    await shot(op, 'overview');
  });

  let taskId = null;
  await check('a submitted task moves to succeeded on its page without a reload', async () => {
    const r = await api('POST', '/v1/tasks', E.OP_TOKEN,
      {kind: 'exec', name: 'ui-live', command: ['sh', '-c', 'sleep 1.5; echo the platypus sings']});
    assert(r.status === 201, 'submit: ' + r.status);
    taskId = r.body.tasks[0].id;
    await visit(op, '#/task/' + taskId, '#task-state');
    const first = await op.$eval('#task-state', (e) => e.dataset.state);
    assert(['queued', 'running'].includes(first), 'first seen state ' + first);
    await op.waitForSelector('#task-state[data-state=succeeded]', {timeout: 10000});
    assert(await op.evaluate(() => window.__noReload === 1), 'the page was reloaded');
    const tail = await op.$eval('#output-tail', (e) => e.textContent);
    assert(tail.includes('platypus'), 'output tail: ' + tail);
    await shot(op, 'task');
  });

  await check('search finds the task by a word of its spec', async () => {
    await visit(op, '#/tasks', '#task-filters');
    await op.type('#task-filters input[name=q]', 'platypus');
    await op.click('#task-filters button[type=submit]');
    await op.waitForSelector(`#task-list tr[data-task="${taskId}"]`, {timeout: 8000});
    const n = await op.$$eval('#task-list tbody tr[data-task]', (r) => r.length);
    assert(n === 1, n + ' rows for the word');
    await shot(op, 'tasks');
  });

  await check('a dead letter is replayed from the dead-letter page', async () => {
    await visit(op, '#/dlq/' + E.DEAD_QUEUE, `#dlq-list tr[data-task="${E.DEAD_TASK}"]`);
    await shot(op, 'dead-letters');
    fs.writeFileSync(E.FIX_FILE, 'fixed\n');
    await op.click(`#dlq-list tr[data-task="${E.DEAD_TASK}"] button[data-action="dlq.replay"]`);
    await until('the replayed task succeeds', async () =>
      (await api('GET', '/v1/tasks/' + E.DEAD_TASK, E.OP_TOKEN)).body.state === 'succeeded');
    await op.waitForFunction((id) => !document.querySelector(`#dlq-list tr[data-task="${id}"]`), {timeout: 8000},
      E.DEAD_TASK);
  });

  const bulk = E.BULK_TASKS.split(' ');
  await check('a group of dead letters (by error) is replayed over a filter after a confirmation', async () => {
    const row = '#dlq-groups tr[data-group="exit status 1"]';
    await visit(op, '#/dlq/' + E.DEAD_QUEUE, row + '[data-count="3"]');
    await op.click(row + ' button[data-action="dlq.replay"]');
    await op.waitForSelector(row + ' .confirm-yes');
    await op.click(row + ' .confirm-yes');
    await until('the group\'s three tasks succeed', async () => {
      const st = await Promise.all(bulk.map(async (id) => (await api('GET', '/v1/tasks/' + id, E.OP_TOKEN)).body.state));
      return st.every((x) => x === 'succeeded') ? st : null;
    }, 20000);
    await op.waitForFunction((sel) => !document.querySelector(sel), {timeout: 8000}, row);
    const others = await op.$$eval('#dlq-groups tr[data-group]', (r) => r.map((x) => x.dataset.group));
    assert(others.includes('exit status 5') && others.includes('exit status 3'), 'other groups: ' + others);
  });

  await check('a dead task is retried from its page and succeeds, its first attempt kept', async () => {
    await visit(op, '#/task/' + E.RETRY_TASK, '#task-state[data-state=dead]');
    await op.click('button[data-action="task.retry"]');
    await op.waitForSelector('#task-state[data-state=succeeded]', {timeout: 15000});
    const t = (await api('GET', '/v1/tasks/' + E.RETRY_TASK, E.OP_TOKEN)).body;
    assert(t.attempts.length === 2 && t.attempts[0].outcome !== 'succeeded', 'attempts: ' + JSON.stringify(t.attempts));
  });

  await check('the monitors page shows checks with state, uptime, incidents; silence and unsilence', async () => {
    const web = '#monitor-list tr[data-check=web]';
    await visit(op, '#/monitors', web + '[data-state=failing]');
    await op.waitForSelector('#monitor-list tr[data-check=api][data-state=ok]');
    const up = await op.$eval(web + ' td.uptime', (e) => e.textContent);
    assert(up === '40.00%', 'uptime of web over 24 h: ' + up);
    await op.waitForSelector('#incident-list tr[data-state=open]');
    await shot(op, 'monitors');
    await op.click(web + ' button[data-action="monitor.silence"]');
    await op.waitForSelector(web + ' .confirm-yes');
    await op.click(web + ' .confirm-yes');
    await op.waitForSelector(web + '[data-silenced="1"] button[data-action="monitor.unsilence"]', {timeout: 8000});
    assert((await api('GET', '/v1/monitors/web', E.OP_TOKEN)).body.silenced === true, 'API: not silenced');
    await op.click(web + ' button[data-action="monitor.unsilence"]');
    await op.waitForSelector(web + '[data-silenced="0"]', {timeout: 8000});
    await visit(op, '#/monitor/web', '#check-state[data-state=failing]');
    const probes = await op.$$eval('tr[data-probe]', (r) => r.map((x) => x.dataset.ok).join(''));
    assert(probes === '00011', 'probe history, newest first: ' + probes);
    assert(await op.$('tr[data-incident][data-state=open]'), 'no open incident on the check\'s page');
    await shot(op, 'monitor');
  });

  await check('a deploy is rolled back after a confirmation', async () => {
    await visit(op, `#/deploys?app=${E.APP}&env=${E.ENV}`, `#revisions tr[data-revision="${E.PREV_REV}"]`);
    await shot(op, 'deployments');
    const row = `#revisions tr[data-revision="${E.PREV_REV}"]`;
    await op.click(row + ' button[data-action="app.rollback"]');
    await op.waitForSelector(row + ' .confirm-yes');
    await op.click(row + ' .confirm-yes');
    await op.waitForFunction((rev) => [...document.querySelectorAll('.current-rev')].some((e) =>
      e.textContent === rev), {timeout: 15000}, E.PREV_REV);
  });

  await check('the pipeline page draws the DAG with each node\'s state', async () => {
    const r = await api('POST', '/v1/pipelines', E.OP_TOKEN, {name: 'ui-dag', steps: {
      build: {spec: {kind: 'exec', command: ['true']}},
      test: {needs: ['build'], shards: 2, spec: {kind: 'exec', command: ['sleep', '0.5']}},
      ship: {needs: ['test'], spec: {kind: 'noop'}}}});
    assert(r.status === 201 || r.status === 202, 'pipeline submit: ' + r.status);
    await visit(op, '#/pipeline/' + r.body.id, '#dag svg');
    await op.waitForSelector('#pipeline-state[data-state=succeeded]', {timeout: 15000});
    const nodes = await op.$$eval('#dag .dag-node', (n) => n.map((x) => x.dataset.state));
    assert(nodes.length === 4 && nodes.every((s) => s === 'succeeded'), 'nodes: ' + nodes);
    await shot(op, 'pipeline');
    await visit(op, '#/pipelines', `tr[data-pipeline="${r.body.id}"]`);
    await shot(op, 'pipelines');
  });

  if (session && session.can.some((a) => a.startsWith('approval'))) {
    await check('a waiting pipeline step is approved', async () => {
      const r = await api('POST', '/v1/pipelines', E.OP_TOKEN, {name: 'ui-gate', steps: {
        build: {spec: {kind: 'noop'}}, ship: {needs: ['build'], approval: {role: 'operator'}, spec: {kind: 'noop'}}}});
      assert(r.status === 201 || r.status === 202, 'pipeline with an approval step: ' + JSON.stringify(r.body));
      await visit(op, '#/pipeline/' + r.body.id, 'tr[data-step=ship][data-state=waiting_approval] button[data-action=approve]');
      await op.click('tr[data-step=ship] button[data-action=approve]');
      await op.waitForSelector('#pipeline-state[data-state=succeeded]', {timeout: 15000});
    });
  } else {
    skip('a waiting pipeline step is approved', 'this manager has no approvals route (no approval.* action in GET /v1/session "can")');
  }

  await check('a forged POST with the session cookie and no CSRF token is refused (403)', async () => {
    const r = await api('POST', '/v1/tasks', null, {kind: 'noop'}, opCookie);
    assert(r.status === 403 && /CSRF/.test(r.body.error), 'got ' + r.status + ' ' + JSON.stringify(r.body));
    const good = await api('POST', '/v1/tasks', null, {kind: 'noop', name: 'ui-csrf-ok'}, opCookie, session.csrf);
    assert(good.status === 201, 'with the CSRF token: ' + good.status);
  });

  const vctx = await browser.createBrowserContext();
  const viewer = await watched(vctx, 'viewer');
  await check('a viewer sees no action buttons on any page', async () => {
    await signIn(viewer, E.VIEWER_TOKEN);
    assert(await viewer.$eval('#nav-audit', (e) => e.hidden), 'audit link shown to a viewer');
    const pages = [['#/queues', 'tr[data-queue]'], ['#/task/' + E.DEAD_TASK, '#task-state'],
      ['#/tasks', '#task-list tr[data-task]'], ['#/dlq', '#dlq-list'], ['#/dlq/exec', '#dlq-groups tr[data-group]'],
      ['#/monitors', '#monitor-list tr[data-check]'], ['#/monitor/web', '#check-state'],
      [`#/deploys?app=${E.APP}&env=${E.ENV}`, '#revisions tr[data-revision]'], ['#/pipelines', 'tr[data-pipeline]']];
    for (const [h, sel] of pages) {
      await visit(viewer, h, sel);
      await new Promise((r) => setTimeout(r, 300));
      const b = await viewer.$$eval('button[data-action]', (x) => x.map((e) => e.dataset.action));
      assert(b.length === 0, h + ' shows ' + b.join(', '));
    }
  });

  await check('the API refuses a viewer session\'s change with 403 even with its CSRF token', async () => {
    const c = await cookieOf(viewer);
    const vc = 'devsys_session=' + c.value;
    const s = (await api('GET', '/v1/session', null, null, vc)).body;
    const r = await api('POST', '/v1/tasks', null, {kind: 'noop'}, vc, s.csrf);
    assert(r.status === 403 && /operator/.test(r.body.error), 'got ' + r.status + ' ' + JSON.stringify(r.body));
  });

  const actx = await browser.createBrowserContext();
  const admin = await watched(actx, 'admin');
  await check('the audit page lists the console\'s actions under the token\'s name', async () => {
    await signIn(admin, E.ADMIN_TOKEN);
    await visit(admin, '#/audit?actor=token:ui-operator', '#audit-list tr[data-action="dlq.replay"]');
    for (const a of ['session.create', 'app.rollback', 'task.submit'])
      assert(await admin.$(`#audit-list tr[data-action="${a}"]`), 'no ' + a + ' row');
    await shot(admin, 'audit');
    await visit(admin, '#/queues', 'tr[data-queue]');
    await shot(admin, 'queues');
  });

  await check('an admin purges a group of dead letters after a confirmation', async () => {
    const row = '#dlq-groups tr[data-group="exit status 5"]';
    await visit(admin, '#/dlq/' + E.DEAD_QUEUE, row + '[data-count="2"]');
    await admin.click(row + ' button[data-action="dlq.purge"]');
    await admin.waitForSelector(row + ' .confirm-yes');
    await admin.click(row + ' .confirm-yes');
    await admin.waitForFunction((sel) => !document.querySelector(sel), {timeout: 8000}, row);
    const letters = (await api('GET', '/v1/dlq/' + E.DEAD_QUEUE, E.ADMIN_TOKEN)).body.entries.map((e) => e.id);
    for (const id of E.PURGE_TASKS.split(' ')) assert(!letters.includes(id), id + ' still in the DLQ');
  });

  await check('sign out ends the session: its cookie is refused afterwards', async () => {
    await op.click('#signout');
    await op.waitForSelector('#signin:not([hidden])');
    const r = await api('GET', '/v1/session', null, null, opCookie);
    assert(r.status === 401, 'old cookie after sign out: ' + r.status);
  });

  await check('no console error, page error or failed request in any page', async () => {
    const all = [...op.problems, ...viewer.problems, ...admin.problems];
    assert(all.length === 0, all.join(' | '));
  });
  await browser.close();
  process.exit(failures ? 1 : 0);
})().catch((e) => { fail('browser run', e && e.stack ? e.stack : e); process.exit(1); });
