// rpqueue dashboard. Plain JS, no build step.
//
// Everything shown here comes from Redis, and so from whoever queued the
// tasks: names, arguments and error texts are untrusted. They only ever
// reach the page as text nodes (el() below, textContent) or attribute
// values (setAttribute); no data is ever parsed as HTML.
'use strict';

(function () {
  const state = {
    csrf: null,
    pollMs: 2000,
    paused: false,
    timer: null,
    inFlight: false,
    queue: null,
    task: null,
    page: 0,
    perPage: 25,
    deadTotal: 0,
    historyMinutes: 60,
    historyAt: 0,
    deadPage: 0,
    deadPerPage: 25,
    // Filters of the dead-letter list: queue, name, error, id (views/dead.search).
    deadFilter: {},
    // Last rendered JSON per table: unchanged data is not redrawn, so rows
    // (and the buttons in them) stay put under the pointer between polls.
    rendered: {},
  };

  const $ = (id) => document.getElementById(id);

  // Build an element. Children are nodes or strings; strings become text
  // nodes, so markup inside them stays literal text.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'dataset') {
        Object.assign(node.dataset, value);
      } else {
        node.setAttribute(name, value === true ? '' : String(value));
      }
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function json(value) {
    if (value === undefined) return '';
    try {
      return JSON.stringify(value);
    } catch (e) {
      return String(value);
    }
  }

  // Long arguments are cut in the cell; the full text is in the tooltip.
  function clipped(text, max) {
    const limit = max || 120;
    const shown = text.length > limit ? text.slice(0, limit - 1) + '…' : text;
    return el('span', { class: 'mono', title: text.length > limit ? text : null }, shown);
  }

  // A listing cuts long arguments (the server sends the cut JSON text and
  // names the field in `truncated`); the whole value is one click away.
  function argsCell(row, key, fullPath) {
    const cut = Array.isArray(row.truncated) && row.truncated.includes(key);
    if (!cut) return clipped(json(row[key]));
    const size = row.sizes && row.sizes[key];
    return el('span', {},
      clipped(String(row[key])),
      ' ',
      el('a', { href: fullPath, target: '_blank', rel: 'noopener', class: 'full-value',
        title: `cut: ${size === undefined ? 'long' : size + ' characters'}` }, '(full)'));
  }

  // A dotted name (module.function_name) as text that may wrap after its
  // dots and underscores, and nowhere else: <wbr> marks where.
  function breakable(name) {
    const span = el('span', {});
    for (const part of String(name).split(/(?<=[._:/])/)) {
      if (span.childNodes.length) span.append(el('wbr', {}));
      span.append(document.createTextNode(part));
    }
    return span;
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  function fmtTime(ts) {
    if (ts === null || ts === undefined) return '–';
    const d = new Date(ts * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtSpan(seconds) {
    const s = Math.abs(seconds);
    if (s < 1) return `${s.toFixed(1)}s`;
    if (s < 90) return `${Math.round(s)}s`;
    if (s < 90 * 60) return `${Math.round(s / 60)}m`;
    if (s < 36 * 3600) return `${(s / 3600).toFixed(1)}h`;
    return `${(s / 86400).toFixed(1)}d`;
  }

  // Relative to the server's clock (Redis TIME), not this browser's.
  function relative(ts, now) {
    if (ts === null || ts === undefined || now === undefined) return '';
    const delta = ts - now;
    return delta >= 0 ? `in ${fmtSpan(delta)}` : `${fmtSpan(delta)} ago`;
  }

  function fmtRate(value) {
    if (value === undefined) return '';
    return value >= 10 ? value.toFixed(0) : value.toFixed(value >= 1 ? 1 : 2);
  }

  // -- talking to the API ---------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || `HTTP ${status}`);
      this.status = status;
      this.code = body && body.code;
    }
  }

  async function request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      if (state.csrf) headers['X-CSRF-Token'] = state.csrf;
    }
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    let payload = null;
    try {
      payload = await response.json();
    } catch (e) {
      payload = null;
    }
    if (response.status === 401) {
      window.location.assign('/login');
    }
    if (!response.ok) throw new ApiError(response.status, payload);
    return payload;
  }

  const get = (path) => request('GET', path);

  async function loadSession() {
    const session = await get('/api/session');
    state.csrf = session.csrf_token;
    state.pollMs = Math.max(250, Math.round(session.poll_interval * 1000));
    $('conn').textContent = `${session.redis} · prefix ${session.prefix}`;
    $('footer').textContent = `rpqueue ${session.version}`;
    $('logout').hidden = !session.auth_required;
  }

  async function post(path, body) {
    try {
      return await request('POST', path, body);
    } catch (err) {
      // The server restarted (new CSRF secret) or the session cookie is
      // gone: fetch a fresh token once and try again.
      if (err instanceof ApiError && err.code === 'csrf') {
        await loadSession();
        return request('POST', path, body);
      }
      throw err;
    }
  }

  // -- rendering --------------------------------------------------------------

  // Replace a table's rows unless the data is what is already shown.
  function renderRows(key, tbody, data, build) {
    const fingerprint = json(data);
    if (state.rendered[key] === fingerprint) return false;
    state.rendered[key] = fingerprint;
    tbody.replaceChildren(...build());
    labelCells(tbody);
    return true;
  }

  // On a phone the tables stack (style.css): each cell shows its column's
  // name from data-label, copied here from the table head.
  function labelCells(tbody) {
    const table = tbody.closest('table');
    if (!table || !table.tHead || tbody === table.tHead.rows[0]) return;
    const names = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
    for (const row of tbody.rows) {
      [...row.cells].forEach((cell, i) => {
        if (names[i]) cell.dataset.label = names[i];
      });
    }
  }

  const SVG = 'http://www.w3.org/2000/svg';

  function sparkline(values, label) {
    const width = 120;
    const height = 26;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('role', 'img');
    const title = document.createElementNS(SVG, 'title');
    title.textContent = label;
    svg.append(title);
    if (!values || values.length < 2) return svg;
    const max = Math.max(...values, 0.001);
    const step = width / (values.length - 1);
    const points = values.map((v, i) =>
      `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
    const area = document.createElementNS(SVG, 'polygon');
    area.setAttribute('class', 'spark-area');
    area.setAttribute('points', `0,${height} ${points.join(' ')} ${width},${height}`);
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('class', 'spark-line');
    line.setAttribute('points', points.join(' '));
    svg.append(area, line);
    return svg;
  }

  function renderQueues(data) {
    const rows = data.queues;
    const sched = data.scheduling;
    $('queues-mode').textContent = sched.age === null
      ? `· ${sched.mode} scheduling` : `· ${sched.mode} scheduling (age ${sched.age}s)`;
    $('queues-empty').hidden = rows.length > 0;
    renderRows('queues', $('queues').tBodies[0], data, () => rows.map((q) => {
      const rate = q.rate || [];
      // Smoothed over ~10 s on the server: single polls swing with bursts.
      const last = q.rate_now === null || q.rate_now === undefined ? undefined : q.rate_now;
      const processed = (q.stats.done || 0) + (q.stats.failed || 0);
      const open = el('button', {
        type: 'button', class: 'link', dataset: { action: 'open', queue: q.name },
      }, q.name);
      const toggle = el('button', {
        type: 'button', dataset: { action: q.paused ? 'resume' : 'pause', queue: q.name },
        title: q.paused ? 'let workers take tasks from this queue again'
          : 'workers stop taking tasks from this queue (running ones finish)',
      }, q.paused ? 'Resume queue' : 'Pause queue');
      return el('tr', { dataset: { queue: q.name }, class: q.name === state.queue ? 'selected' : null },
        el('td', { class: 'queue-name' }, open,
          q.paused ? el('span', { class: 'pill paused', title: 'workers take nothing from it' }, 'paused') : null),
        el('td', { class: 'num' }, q.priority === null ? '–' : q.priority),
        el('td', { class: sched.mode === 'weighted' ? 'num weight opt' : 'num weight muted opt' }, q.weight),
        el('td', { class: 'num depth' }, q.waiting),
        el('td', { class: 'num limit opt', title: q.limit ? `overflow: ${q.limit.overflow}` : 'unbounded' },
          q.limit ? `${q.limit.max_len} ${q.limit.overflow === 'drop_oldest' ? '(drop oldest)' : '(refuse)'}` : '–'),
        el('td', { class: 'num' }, q.delayed),
        el('td', { class: 'num' }, q.running),
        el('td', { class: q.dead ? 'num warn' : 'num' }, q.dead),
        el('td', { class: (q.stats.failed || 0) ? 'num failed warn' : 'num failed' }, q.stats.failed || 0),
        el('td', { class: 'num' }, processed),
        el('td', { class: 'rate' },
          sparkline(rate, `${q.name}: tasks processed per second`),
          el('span', { class: 'muted' }, last === undefined ? '' : ` ${fmtRate(last)}/s`)),
        el('td', { class: 'opt', title: fmtTime(q.seen) }, q.seen ? relative(q.seen, data.now) : '–'),
        el('td', { class: 'row-actions' }, toggle));
    }));
  }

  // Data queues (rpqueue.Data): shown only when there are some.
  function renderData(data) {
    $('data-section').hidden = data.queues.length === 0;
    renderRows('data', $('data').tBodies[0], data, () => data.queues.map((d) =>
      el('tr', { dataset: { queue: d.name } },
        el('td', { class: 'queue-name' }, d.name),
        el('td', { class: 'num items' }, d.items),
        el('td', { class: 'num available' }, d.available),
        el('td', { class: 'num' }, d.delayed),
        el('td', { class: 'num' }, d.leased),
        el('td', { class: d.dead ? 'num warn' : 'num' }, d.dead))));
  }

  function historyPath() {
    return `/api/history?queue=${encodeURIComponent(state.queue)}&minutes=${state.historyMinutes}`;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    return node;
  }

  // A hand-drawn chart of per-minute history: processed and failed tasks as
  // lines (left scale), depth as a shaded area (right scale). Minutes with
  // no sample break the lines instead of drawing zeros.
  function historyChart(points, label) {
    const width = 720;
    const height = 160;
    const pad = { left: 36, right: 36, top: 8, bottom: 18 };
    const w = width - pad.left - pad.right;
    const h = height - pad.top - pad.bottom;
    const svg = svgEl('svg', { class: 'history-svg', viewBox: `0 0 ${width} ${height}`, role: 'img' });
    const title = svgEl('title', {});
    title.textContent = label;
    svg.append(title);
    const top = (key) => Math.max(1, ...points.map((p) => p[key] || 0));
    const countMax = Math.max(top('processed'), top('failed'));
    const depthMax = top('depth');
    const x = (i) => pad.left + (points.length < 2 ? 0 : (i / (points.length - 1)) * w);
    const y = (v, max) => pad.top + h - (v / max) * h;
    // Depth: one polygon per run of sampled minutes.
    const runs = (key) => {
      const out = [];
      let run = [];
      points.forEach((p, i) => {
        if (p[key] === null || p[key] === undefined) {
          if (run.length) out.push(run);
          run = [];
        } else {
          run.push([i, p[key]]);
        }
      });
      if (run.length) out.push(run);
      return out;
    };
    for (const run of runs('depth')) {
      const pts = run.map(([i, v]) => `${x(i).toFixed(1)},${y(v, depthMax).toFixed(1)}`);
      const base = (pad.top + h).toFixed(1);
      svg.append(svgEl('polygon', { class: 'chart-depth',
        points: `${x(run[0][0]).toFixed(1)},${base} ${pts.join(' ')} ${x(run[run.length - 1][0]).toFixed(1)},${base}` }));
    }
    for (const key of ['processed', 'failed']) {
      for (const run of runs(key)) {
        const pts = run.map(([i, v]) => `${x(i).toFixed(1)},${y(v, countMax).toFixed(1)}`);
        if (pts.length === 1) pts.push(pts[0]);
        svg.append(svgEl('polyline', { class: `chart-${key}`, points: pts.join(' ') }));
      }
    }
    svg.append(svgEl('line', { class: 'chart-axis', x1: pad.left, x2: pad.left + w,
      y1: pad.top + h, y2: pad.top + h }));
    const text = (content, attrs) => {
      const node = svgEl('text', attrs);
      node.textContent = content;
      svg.append(node);
    };
    text(String(countMax), { x: pad.left - 4, y: pad.top + 8, 'text-anchor': 'end', class: 'chart-label' });
    text('0', { x: pad.left - 4, y: pad.top + h, 'text-anchor': 'end', class: 'chart-label' });
    text(String(depthMax), { x: pad.left + w + 4, y: pad.top + 8, class: 'chart-label' });
    if (points.length) {
      text(fmtTime(points[0].t).slice(points.length > 60 ? 5 : 11, 16),
        { x: pad.left, y: height - 4, class: 'chart-label' });
      text('now', { x: pad.left + w, y: height - 4, 'text-anchor': 'end', class: 'chart-label' });
    }
    return svg;
  }

  function renderHistory(data) {
    const sampled = data.points.some((p) => p.depth !== null);
    $('history-empty').hidden = sampled;
    $('history-rate').textContent = data.rate === null ? ''
      : `· now ${fmtRate(data.rate)}/s processed, ${fmtRate(data.failure_rate)}/s failed (5-minute average)`;
    const span = data.minutes >= 1440 ? 'the last day' : `the last ${data.minutes} minutes`;
    $('history-chart').replaceChildren(
      historyChart(data.points, `${data.queue}: tasks per minute over ${span}`));
    $('history-hour').setAttribute('aria-pressed', String(data.minutes === 60));
    $('history-day').setAttribute('aria-pressed', String(data.minutes === 1440));
  }

  function showHistory(minutes) {
    state.historyMinutes = minutes;
    state.historyAt = 0;
    refresh();
  }

  function renderItems(data) {
    $('items-queue').textContent = data.queue;
    const pages = Math.max(1, Math.ceil(data.total / data.per_page));
    $('items-summary').textContent =
      `${data.waiting} waiting · ${data.delayed} delayed · ${data.running} in flight`;
    $('items-page').textContent = `page ${data.page + 1} of ${pages} (${data.total} tasks)`;
    $('items-prev').disabled = data.page <= 0;
    $('items-next').disabled = data.page + 1 >= pages;
    $('items-empty').hidden = data.items.length > 0;
    renderRows('items', $('items').tBodies[0], data, () => data.items.map((item) => {
      const when = item.status === 'delayed'
        ? el('span', { title: relative(item.due, data.now) }, fmtTime(item.due))
        : 'when a worker is free';
      const target = { queue: data.queue, id: item.id };
      return el('tr', { dataset: { id: item.id } },
        el('td', { class: 'mono id' }, detailLink(data.queue, item.id, item.id)),
        el('td', {}, el('span', { class: `pill ${item.status}` }, item.status)),
        el('td', { class: 'num priority opt' }, item.priority === undefined ? 0 : item.priority),
        el('td', { class: 'mono unique opt' }, item.unique_key === undefined ? '' : clipped(item.unique_key)),
        el('td', { class: 'task-name' }, item.name === undefined ? `(unreadable: ${item.error})` : breakable(item.name)),
        el('td', { class: 'args' }, argsCell(item, 'args', taskPath(data.queue, item.id))),
        el('td', { class: 'kwargs' }, argsCell(item, 'kwargs', taskPath(data.queue, item.id))),
        el('td', {}, when),
        el('td', { class: 'row-actions' },
          item.status === 'delayed'
            ? el('button', { type: 'button', dataset: { action: 'run-now', ...target } }, 'Run now') : null,
          el('button', { type: 'button', class: 'danger', dataset: { action: 'delete-task', ...target } }, 'Delete')));
    }));
  }

  function renderDead(data) {
    state.deadTotal = data.total;
    const filtered = Object.keys(state.deadFilter).length > 0;
    $('dead-count').textContent = data.total ? String(data.total) : '';
    $('dead-empty').hidden = data.items.length > 0;
    $('dead-empty').textContent = filtered && data.total ? 'No dead letter matches these filters.'
      : 'No dead letters.';
    $('dead-requeue-all').disabled = data.total === 0;
    $('dead-delete-all').disabled = data.total === 0;
    const pages = Math.max(1, Math.ceil(data.matched / data.per_page));
    const what = filtered ? `${data.matched}${data.complete ? '' : '+'} matching of ${data.total}`
      : `${data.total} dead letters`;
    $('dead-page').textContent = `page ${data.page + 1} of ${pages} · ${what}, newest first`;
    $('dead-prev').disabled = data.page <= 0;
    $('dead-next').disabled = data.page + 1 >= pages;
    renderRows('dead', $('dead').tBodies[0], data, () => data.items.map((d) => {
      const target = { queue: d.queue, id: d.id };
      return el('tr', { dataset: { id: d.id, queue: d.queue } },
        el('td', { class: 'task-name' }, detailLink(d.queue, d.id, d.unreadable ? `(unreadable record ${d.id})`
          : (d.name === undefined || d.name === null ? '(unreadable)' : breakable(d.name)))),
        el('td', {}, d.queue),
        el('td', { class: 'args' }, argsCell(d, 'args', deadPath(d.queue, d.id))),
        el('td', { class: 'opt' }, d.reason || ''),
        el('td', { class: 'error' }, clipped(d.error || '', 160)),
        el('td', { class: 'num opt' }, d.attempts_used === null ? '' : d.attempts_used),
        el('td', { title: fmtTime(d.time) }, fmtTime(d.time)),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', dataset: { action: 'requeue', ...target } }, 'Requeue'),
          el('button', { type: 'button', class: 'danger', dataset: { action: 'delete', ...target } }, 'Delete')));
    }));
  }

  function renderSchedule(data) {
    $('schedule-empty').hidden = data.items.length > 0;
    renderRows('schedule', $('schedule').tBodies[0], data, () => data.items.map((s) =>
      el('tr', {},
        el('td', { class: 'task-name' }, breakable(s.name)),
        el('td', {}, s.queue),
        el('td', { class: 'mono' }, s.schedule || '?'),
        el('td', {}, fmtTime(s.next_run)),
        el('td', { class: s.next_run < data.now - 5 ? 'warn' : 'muted' }, relative(s.next_run, data.now)))));
  }

  // Fields of rpqueue's worker registry (rpqueue/registry.py) in display
  // order; any other field a worker publishes gets a column after them.
  const WORKER_FIELDS = ['id', 'host', 'pid', 'queues', 'threads', 'running', 'done', 'failed',
    'started', 'beat'];
  const WORKER_LABELS = {
    id: 'Worker', host: 'Host', pid: 'PID', queues: 'Queues', threads: 'Threads',
    running: 'Running now', done: 'Done', failed: 'Failed', started: 'Up since', beat: 'Last beat',
  };
  const WORKER_TIMES = new Set(['started', 'beat', 'heartbeat']);
  // Left out on narrow screens (style.css .opt): the id names host and pid.
  const WORKER_OPTIONAL = new Set(['host', 'pid', 'started', 'tasks']);

  function workerCell(field, value, now) {
    if (value === undefined || value === null) return el('td', {}, '');
    if (WORKER_TIMES.has(field) && typeof value === 'number') {
      return el('td', { title: fmtTime(value) }, relative(value, now));
    }
    if (field === 'queues' && Array.isArray(value)) {
      return el('td', {}, value.length ? value.join(', ') : 'all');
    }
    if (field === 'running' && Array.isArray(value)) {
      if (!value.length) return el('td', { class: 'muted' }, 'idle');
      const lines = value.map((r) => {
        const took = typeof r.for === 'number' ? ` ${fmtSpan(r.for)}` : '';
        return el('div', { title: `${r.id || ''} in ${r.queue || '?'}` }, `${r.task || json(r)}${took}`);
      });
      return el('td', { class: 'running' }, ...lines);
    }
    if (typeof value === 'number') return el('td', { class: 'num' }, value);
    // A list of names (the worker's tasks): wraps between names, not inside one.
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
      return el('td', { class: 'names' }, value.join(', '));
    }
    return el('td', {}, typeof value === 'object' ? json(value) : String(value));
  }

  function renderWorkers(data) {
    const note = $('workers-note');
    const table = $('workers');
    if (!data.available) {
      note.hidden = false;
      note.textContent = data.reason || 'no workers running';
      table.hidden = true;
      state.rendered.workers = null;
      return;
    }
    const staleText = data.stale ? ` (${data.stale} stale ${data.stale === 1 ? 'entry' : 'entries'} hidden)` : '';
    note.hidden = data.workers.length > 0 && !data.stale;
    note.textContent = data.workers.length ? staleText.trim() : `No workers running${staleText}.`;
    table.hidden = data.workers.length === 0;
    const extra = new Set();
    for (const w of data.workers) {
      for (const key of Object.keys(w)) if (!WORKER_FIELDS.includes(key)) extra.add(key);
    }
    const present = WORKER_FIELDS.filter((f) => data.workers.some((w) => w[f] !== undefined));
    const columns = [...present, ...[...extra].sort()];
    renderRows('workers-head', table.tHead.rows[0], columns, () => columns.map((c) =>
      el('th', { class: [['pid', 'threads', 'done', 'failed'].includes(c) ? 'num' : '',
        WORKER_OPTIONAL.has(c) ? 'opt' : ''].join(' ').trim() || null },
        Object.prototype.hasOwnProperty.call(WORKER_LABELS, c) ? WORKER_LABELS[c] : c)));
    renderRows('workers', table.tBodies[0], data, () => data.workers.map((w) =>
      el('tr', { dataset: { id: w.id } }, ...columns.map((c) => {
        const cell = workerCell(c, w[c], data.now);
        cell.dataset.field = c;
        if (WORKER_OPTIONAL.has(c)) cell.classList.add('opt');
        return cell;
      }))));
  }

  // -- refresh loop -----------------------------------------------------------

  function setStatus(text, ok) {
    const status = $('status');
    status.textContent = text;
    status.classList.toggle('error', !ok);
  }

  let flashTimer = null;
  function flash(text, isError) {
    const box = $('flash');
    box.textContent = text;
    box.classList.toggle('error', Boolean(isError));
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  function taskPath(queue, id) {
    return `/api/task?queue=${encodeURIComponent(queue)}&id=${encodeURIComponent(id)}`;
  }

  // A task's own page: a link (so it can be opened in a new tab or shared)
  // whose click the page handles without reloading.
  function detailLink(queue, id, label) {
    return el('a', { href: taskHash(queue, id), class: 'detail', dataset: { queue, id } }, label);
  }

  function taskHash(queue, id) {
    return `#task=${encodeURIComponent(queue)}&id=${encodeURIComponent(id)}`;
  }

  function detailPath(queue, id) {
    return `/api/task/${encodeURIComponent(id)}?queue=${encodeURIComponent(queue)}`;
  }

  function deadPath(queue, id) {
    return `/api/dead/item?queue=${encodeURIComponent(queue)}&id=${encodeURIComponent(id)}`;
  }

  function deadListPath() {
    const params = new URLSearchParams({ page: state.deadPage, per_page: state.deadPerPage });
    for (const [key, value] of Object.entries(state.deadFilter)) params.set(key, value);
    return `/api/dead?${params}`;
  }

  function filterDead(filters, page) {
    state.deadFilter = filters;
    state.deadPage = page;
    state.rendered.dead = null;
    refresh();
  }

  // The search box: queues by name, tasks by exact id, dead letters by task
  // name or error text (GET /api/search); each result is a link or a button.
  async function search(text) {
    $('search-section').hidden = false;
    $('search-what').textContent = text;
    const list = $('search-results');
    list.replaceChildren(el('li', { class: 'muted' }, 'searching…'));
    let data;
    try {
      data = await get(`/api/search?q=${encodeURIComponent(text)}`);
    } catch (err) {
      list.replaceChildren(el('li', { class: 'warn' }, `Search failed: ${err.message}`));
      return;
    }
    const items = [];
    for (const t of data.tasks) {
      items.push(el('li', {}, 'Task ', detailLink(t.queue, text, text), ` in queue ${t.queue} (${t.state})`));
    }
    for (const q of data.queues) {
      items.push(el('li', {}, 'Queue ', el('button', { type: 'button', class: 'link', dataset: { action: 'open', queue: q } }, q)));
    }
    const more = data.complete ? '' : '+';
    if (data.dead_by_name) {
      items.push(el('li', {}, el('button', { type: 'button', class: 'link', dataset: { action: 'dead', field: 'name' } },
        `${data.dead_by_name}${more} dead letters of a task named like this`)));
    }
    if (data.dead_by_error) {
      items.push(el('li', {}, el('button', { type: 'button', class: 'link', dataset: { action: 'dead', field: 'error' } },
        `${data.dead_by_error}${more} dead letters with this in their error`)));
    }
    if (!items.length) items.push(el('li', { class: 'muted' }, 'Nothing found.'));
    list.replaceChildren(...items);
  }

  function itemsPath() {
    const q = encodeURIComponent(state.queue);
    return `/api/items?queue=${q}&page=${state.page}&per_page=${state.perPage}`;
  }

  async function refresh() {
    if (state.inFlight) return;
    state.inFlight = true;
    try {
      // Each view loads and renders on its own: one failing request (or one
      // record a renderer chokes on) leaves the others showing their data.
      const views = [['queues', '/api/queues', renderQueues], ['dead', deadListPath(), renderDead],
        ['schedule', '/api/schedule', renderSchedule], ['workers', '/api/workers', renderWorkers],
        ['data', '/api/data', renderData]];
      if (state.queue !== null) views.push(['items', itemsPath(), renderItems]);
      // History changes once a minute; a day of it is 1440 small reads.
      if (state.queue !== null && Date.now() - state.historyAt > 15000) {
        state.historyAt = Date.now();
        views.push(['history', historyPath(), renderHistory]);
      }
      if (state.task !== null) {
        views.push(['task', null, loadTask]);
      }
      const outcomes = await Promise.allSettled(views.map(async ([, path, render]) => {
        if (path === null) await render();
        else render(await get(path));
      }));
      const failed = outcomes.map((o, i) => (o.status === 'rejected'
        ? `${views[i][0]}: ${o.reason && o.reason.message ? o.reason.message : o.reason}` : null))
        .filter((x) => x !== null);
      if (failed.length) setStatus(`error: ${failed.join('; ')}`, false);
      else setStatus(`updated ${fmtTime(Date.now() / 1000).slice(11)}`, true);
    } finally {
      state.inFlight = false;
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    if (state.paused) return;
    state.timer = setTimeout(async () => {
      // A hidden tab keeps its timer but asks nothing of Redis.
      if (!document.hidden) await refresh();
      schedule();
    }, state.pollMs);
  }

  function openQueue(name, page) {
    state.queue = name;
    state.page = page || 0;
    state.rendered.items = null;
    state.rendered.queues = null;
    state.historyAt = 0;
    $('items-section').hidden = name === null;
    const hash = name === null ? '' : `#queue=${encodeURIComponent(name)}`;
    if (window.location.hash !== hash) {
      window.history.replaceState(null, '', hash || window.location.pathname);
    }
    refresh();
  }

  function queueFromHash() {
    const match = /^#queue=(.*)$/.exec(window.location.hash);
    if (!match) return null;
    try {
      return decodeURIComponent(match[1]);
    } catch (e) {
      return null;
    }
  }

  function taskFromHash() {
    const match = /^#task=([^&]*)&id=(.*)$/.exec(window.location.hash);
    if (!match) return null;
    try {
      return { queue: decodeURIComponent(match[1]), id: decodeURIComponent(match[2]) };
    } catch (e) {
      return null;
    }
  }

  function openTask(target) {
    state.task = target;
    state.rendered.task = null;
    $('task-section').hidden = target === null;
    const hash = target === null ? '' : taskHash(target.queue, target.id);
    if (window.location.hash !== hash) {
      window.history.replaceState(null, '', hash || window.location.pathname);
    }
    if (target !== null) {
      $('task-id').textContent = target.id;
      $('task-section').scrollIntoView({ block: 'start' });
    }
    refresh();
  }

  function field(name, value) {
    return [el('dt', {}, name), el('dd', { dataset: { field: name } }, value)];
  }

  async function loadTask() {
    const { queue, id } = state.task;
    try {
      renderTask(await get(detailPath(queue, id)));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      // Gone (its state record expired, or it never was): say so, not an error.
      state.rendered.task = null;
      $('task-missing').hidden = false;
      $('task-missing').textContent = `Nothing is known about task ${id} in queue ${queue} ` +
        '(never queued here, or finished long enough ago that its record expired).';
      $('task-state').textContent = 'unknown';
      $('task-fields').replaceChildren();
      for (const part of ['task-progress', 'task-error-head', 'task-error', 'task-result-head', 'task-result']) {
        $(part).hidden = true;
      }
    }
  }

  // The task page: everything GET /api/task/{id} knows (views/tasks.py).
  function renderTask(data) {
    if (state.rendered.task === json(data)) return;
    state.rendered.task = json(data);
    $('task-missing').hidden = true;
    $('task-id').textContent = data.id;
    const pill = $('task-state');
    pill.textContent = data.state;
    pill.className = `pill ${data.state}`;
    const rows = [
      ...field('Queue', data.queue),
      ...field('Task', data.name === undefined ? '(message no longer stored)' : data.name),
      ...field('Args', el('span', { class: 'mono' }, data.args === undefined ? '' : json(data.args))),
      ...field('Kwargs', el('span', { class: 'mono' }, data.kwargs === undefined ? '' : json(data.kwargs))),
      ...field('Attempt', data.attempts ? `${data.attempt} of ${data.attempts}` : String(data.attempt)),
    ];
    if (data.due !== undefined) rows.push(...field('Runs at', fmtTime(data.due)));
    if (data.priority !== undefined) rows.push(...field('Priority', String(data.priority)));
    if (data.unique_key !== undefined) rows.push(...field('Unique key', data.unique_key));
    if (data.finished !== null) rows.push(...field('Finished', fmtTime(data.finished)));
    if (data.error) {
      rows.push(...field('Failed attempt', `${data.error.attempt} on ${data.error.worker || 'a lost worker'} at ${fmtTime(data.error.time)}`));
    }
    if (data.dead) {
      rows.push(...field('Dead letter', `${data.dead.reason || ''} at ${fmtTime(data.dead.time)}`));
    }
    $('task-fields').replaceChildren(...rows);
    const p = data.progress;
    $('task-progress').hidden = !p;
    if (p) {
      $('task-bar').value = p.fraction === null ? 0 : p.fraction;
      $('task-progress-text').textContent =
        `${p.done}${p.total === null ? '' : ` of ${p.total}`}${p.note ? ` · ${p.note}` : ''}`;
    }
    const err = data.error
      ? `${data.error.type}: ${data.error.message}\n\n${data.error.traceback}`
      : (data.dead && data.dead.error) || '';
    $('task-error-head').hidden = !err;
    $('task-error').hidden = !err;
    $('task-error').textContent = err;
    const result = data.result ? data.result.text : '';
    $('task-result-head').hidden = !data.result;
    $('task-result').hidden = !data.result;
    $('task-result').textContent = result;
  }

  async function queueAction(action, queue) {
    try {
      const result = await post(`/api/queue/${action}`, { queue });
      const verb = action === 'pause' ? 'Paused' : 'Resumed';
      flash(result.changed ? `${verb} queue ${queue}.` : `Queue ${queue} already was ${action === 'pause' ? 'paused' : 'running'}.`, false);
    } catch (err) {
      flash(`Could not ${action} ${queue}: ${err.message}`, true);
    }
    state.rendered.queues = null;
    await refresh();
  }

  async function runNow(queue, id) {
    try {
      const result = await post('/api/task/run_now', { queue, id });
      flash(result.moved ? `Task ${id} is due now.` : `Task ${id} was no longer delayed.`, !result.moved);
    } catch (err) {
      flash(`Could not run now: ${err.message}`, true);
    }
    await refresh();
  }

  async function deleteTask(queue, id) {
    try {
      const result = await post('/api/task/delete', { queue, id });
      flash(result.deleted ? `Deleted task ${id}.` : `Task ${id} was no longer queued.`, !result.deleted);
    } catch (err) {
      flash(`Could not delete: ${err.message}`, true);
    }
    await refresh();
  }

  // -- actions ------------------------------------------------------------------

  async function deadAction(action, body, what) {
    try {
      const result = await post(`/api/dead/${action}`, body);
      const count = action === 'requeue' ? result.requeued : result.deleted;
      let text = `${action === 'requeue' ? 'Requeued' : 'Deleted'} ${count} ${what}.`;
      if (result.skipped) text += ` ${result.skipped} could not be requeued (no message).`;
      flash(text, false);
    } catch (err) {
      flash(`Could not ${action}: ${err.message}`, true);
    }
    await refresh();
  }

  function wire() {
    $('queues').addEventListener('click', (ev) => {
      const button = ev.target.closest('button[data-action]');
      if (!button) return;
      const { action, queue } = button.dataset;
      if (action === 'open') openQueue(queue, 0);
      else {
        button.disabled = true;
        queueAction(action, queue);
      }
    });
    // Any task link on the page opens the task's own section.
    document.addEventListener('click', (ev) => {
      const link = ev.target.closest('a.detail');
      if (!link || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      ev.preventDefault();
      openTask({ queue: link.dataset.queue, id: link.dataset.id });
    });
    $('task-close').addEventListener('click', () => openTask(null));
    // A task or queue address typed or pasted into this open page.
    window.addEventListener('hashchange', () => {
      const task = taskFromHash();
      const queue = queueFromHash();
      if (task !== null) openTask(task);
      else if (queue !== null) openQueue(queue, 0);
    });
    $('items').addEventListener('click', (ev) => {
      const button = ev.target.closest('button[data-action]');
      if (!button) return;
      const { action, queue, id } = button.dataset;
      if (action === 'run-now') {
        button.disabled = true;
        runNow(queue, id);
      } else if (action === 'delete-task' && window.confirm(`Delete task ${id}? It will not run.`)) {
        button.disabled = true;
        deleteTask(queue, id);
      }
    });
    $('items-close').addEventListener('click', () => openQueue(null, 0));
    $('history-hour').addEventListener('click', () => showHistory(60));
    $('history-day').addEventListener('click', () => showHistory(1440));
    $('items-prev').addEventListener('click', () => openQueue(state.queue, Math.max(0, state.page - 1)));
    $('items-next').addEventListener('click', () => openQueue(state.queue, state.page + 1));
    $('dead').addEventListener('click', (ev) => {
      const button = ev.target.closest('button[data-action]');
      if (!button) return;
      const { action, queue, id } = button.dataset;
      button.disabled = true;
      deadAction(action, { items: [{ queue, id }] }, 'dead letter');
    });
    $('dead-filter').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const filters = {};
      for (const key of ['queue', 'name', 'error', 'id']) {
        const value = $(`dead-f-${key}`).value.trim();
        if (value) filters[key] = value;
      }
      filterDead(filters, 0);
    });
    $('dead-f-clear').addEventListener('click', () => {
      $('dead-filter').reset();
      filterDead({}, 0);
    });
    $('dead-prev').addEventListener('click', () => filterDead(state.deadFilter, Math.max(0, state.deadPage - 1)));
    $('dead-next').addEventListener('click', () => filterDead(state.deadFilter, state.deadPage + 1));
    $('search').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = $('search-q').value.trim();
      if (text) search(text);
    });
    $('search-close').addEventListener('click', () => { $('search-section').hidden = true; });
    $('search-results').addEventListener('click', (ev) => {
      const button = ev.target.closest('button[data-action]');
      if (!button) return;
      if (button.dataset.action === 'open') openQueue(button.dataset.queue, 0);
      if (button.dataset.action === 'dead') {
        const text = $('search-what').textContent;
        $('dead-filter').reset();
        $(`dead-f-${button.dataset.field}`).value = text;
        filterDead({ [button.dataset.field]: text }, 0);
        $('dead-section').scrollIntoView({ block: 'start' });
      }
    });
    $('dead-requeue-all').addEventListener('click', () => {
      if (window.confirm(`Requeue all ${state.deadTotal} dead letters?`)) {
        deadAction('requeue', { all: true }, 'dead letters');
      }
    });
    $('dead-delete-all').addEventListener('click', () => {
      if (window.confirm(`Delete all ${state.deadTotal} dead letters? This cannot be undone.`)) {
        deadAction('delete', { all: true }, 'dead letters');
      }
    });
    $('autorefresh').addEventListener('click', () => {
      state.paused = !state.paused;
      $('autorefresh').textContent = state.paused ? 'Start auto-refresh' : 'Stop auto-refresh';
      setStatus(state.paused ? 'auto-refresh stopped' : 'refreshing…', true);
      if (!state.paused) refresh();
      schedule();
    });
    $('logout').addEventListener('click', async () => {
      try {
        await post('/api/logout', {});
      } finally {
        window.location.assign('/login');
      }
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && !state.paused) refresh();
    });
  }

  async function start() {
    wire();
    try {
      await loadSession();
    } catch (err) {
      setStatus(`error: ${err.message}`, false);
    }
    const queue = queueFromHash();
    const task = taskFromHash();
    if (queue !== null) {
      openQueue(queue, 0);
    } else if (task !== null) {
      openTask(task);
    } else {
      await refresh();
    }
    schedule();
  }

  start();
}());
