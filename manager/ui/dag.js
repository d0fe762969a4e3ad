/* devsys console: a pipeline's steps drawn as an SVG graph — one column per
 * depth (longest chain of needs), a box per step with its nodes and their
 * state, a curve per need. Plain SVG, no library. */
'use strict';

const DAG_COLORS = {succeeded: '#1f8a4c', failed: '#c23a2b', dead: '#c23a2b', running: '#2458c6',
  retrying: '#b7791f', waiting_approval: '#b7791f', waiting_group: '#b7791f', queued: '#8a93a6',
  waiting: '#b9c0cf',
  skipped: '#5d6475', cancelled: '#5d6475'};
const DAG_W = 190, DAG_GAPX = 70, DAG_GAPY = 18, DAG_HEAD = 30, DAG_ROW = 18, DAG_MAXROWS = 8;

function dagColor(s) { return DAG_COLORS[s] || '#8a93a6'; }

/* steps: GET /v1/pipelines/{id} "steps". Returns an <svg>. */
function drawDag(steps) {
  const byName = new Map(steps.map((s) => [s.step, s]));
  const depth = new Map();
  const depthOf = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    const s = byName.get(name);
    if (!s || seen.has(name)) return 0;
    seen.add(name);
    const d = (s.needs || []).reduce((m, n) => Math.max(m, depthOf(n, seen) + 1), 0);
    depth.set(name, d);
    return d;
  };
  steps.forEach((s) => depthOf(s.step, new Set()));
  const cols = [];
  steps.forEach((s) => { const d = depth.get(s.step); (cols[d] = cols[d] || []).push(s); });
  const pos = new Map();
  let height = 0;
  cols.forEach((col, ci) => {
    let y = 10;
    col.forEach((s) => {
      const rows = Math.min((s.nodes || []).length, DAG_MAXROWS) + ((s.nodes || []).length > DAG_MAXROWS ? 1 : 0);
      const h = DAG_HEAD + rows * DAG_ROW + 6;
      pos.set(s.step, {x: 10 + ci * (DAG_W + DAG_GAPX), y, h});
      y += h + DAG_GAPY;
    });
    height = Math.max(height, y);
  });
  const width = 20 + cols.length * (DAG_W + DAG_GAPX) - DAG_GAPX;
  const svg = el('svg', {width, height, viewBox: `0 0 ${width} ${height}`, class: 'dag-svg', role: 'img'});
  steps.forEach((s) => (s.needs || []).forEach((n) => {
    const a = pos.get(n), b = pos.get(s.step);
    if (!a || !b) return;
    const x1 = a.x + DAG_W, y1 = a.y + DAG_HEAD / 2, x2 = b.x, y2 = b.y + DAG_HEAD / 2, mx = (x1 + x2) / 2;
    svg.appendChild(el('path', {d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, fill: 'none',
      stroke: '#9aa3b5', 'stroke-width': 1.5}));
  }));
  steps.forEach((s) => {
    const p = pos.get(s.step);
    const g = el('g', {class: 'dag-step', 'data-step': s.step, 'data-state': s.state});
    g.appendChild(el('rect', {x: p.x, y: p.y, width: DAG_W, height: p.h, rx: 6, fill: '#fff',
      stroke: dagColor(s.state), 'stroke-width': 2}));
    g.appendChild(el('rect', {x: p.x, y: p.y, width: DAG_W, height: DAG_HEAD - 6, rx: 6, fill: dagColor(s.state)}));
    g.appendChild(el('text', {x: p.x + 8, y: p.y + 16, fill: '#fff', 'font-weight': 600},
      s.step + '  ·  ' + s.state));
    (s.nodes || []).slice(0, DAG_MAXROWS).forEach((n, i) => {
      const y = p.y + DAG_HEAD + i * DAG_ROW;
      const row = el('g', {class: 'dag-node', 'data-node': n.name, 'data-state': n.state});
      row.appendChild(el('circle', {cx: p.x + 12, cy: y + 8, r: 5, fill: dagColor(n.state)}));
      const label = el('text', {x: p.x + 24, y: y + 12, fill: '#1d2330'}, n.name + ' ' + n.state +
        (n.duration_s != null ? ' ' + n.duration_s.toFixed(1) + 's' : ''));
      if (n.task_id) {
        const a = document.createElementNS('http://www.w3.org/2000/svg', 'a');
        a.setAttribute('href', '#/task/' + n.task_id);
        a.appendChild(label);
        row.appendChild(a);
      } else {
        row.appendChild(label);
      }
      g.appendChild(row);
    });
    if ((s.nodes || []).length > DAG_MAXROWS)
      g.appendChild(el('text', {x: p.x + 24, y: p.y + DAG_HEAD + DAG_MAXROWS * DAG_ROW + 12, fill: '#6b7385'},
        '+' + (s.nodes.length - DAG_MAXROWS) + ' more'));
    svg.appendChild(g);
  });
  return svg;
}
