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
    page: 0,
    perPage: 25,
    deadTotal: 0,
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
    return true;
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
      const last = rate.length ? rate[rate.length - 1] : undefined;
      const processed = (q.stats.done || 0) + (q.stats.failed || 0);
      const open = el('button', {
        type: 'button', class: 'link', dataset: { action: 'open', queue: q.name },
      }, q.name);
      return el('tr', { dataset: { queue: q.name }, class: q.name === state.queue ? 'selected' : null },
        el('td', { class: 'queue-name' }, open),
        el('td', { class: 'num' }, q.priority === null ? '–' : q.priority),
        el('td', { class: sched.mode === 'weighted' ? 'num weight' : 'num weight muted' }, q.weight),
        el('td', { class: 'num depth' }, q.waiting),
        el('td', { class: 'num limit', title: q.limit ? `overflow: ${q.limit.overflow}` : 'unbounded' },
          q.limit ? `${q.limit.max_len} ${q.limit.overflow === 'drop_oldest' ? '(drop oldest)' : '(refuse)'}` : '–'),
        el('td', { class: 'num' }, q.delayed),
        el('td', { class: 'num' }, q.running),
        el('td', { class: q.dead ? 'num warn' : 'num' }, q.dead),
        el('td', { class: 'num' }, processed),
        el('td', { class: 'rate' },
          sparkline(rate, `${q.name}: tasks processed per second`),
          el('span', { class: 'muted' }, last === undefined ? '' : ` ${fmtRate(last)}/s`)),
        el('td', { title: fmtTime(q.seen) }, q.seen ? relative(q.seen, data.now) : '–'));
    }));
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
      return el('tr', { dataset: { id: item.id } },
        el('td', { class: 'mono' }, item.id),
        el('td', {}, el('span', { class: `pill ${item.status}` }, item.status)),
        el('td', { class: 'num priority' }, item.priority === undefined ? 0 : item.priority),
        el('td', { class: 'mono unique' }, item.unique_key === undefined ? '' : clipped(item.unique_key)),
        el('td', { class: 'task-name' }, item.name === undefined ? `(unreadable: ${item.error})` : item.name),
        el('td', { class: 'args' }, clipped(json(item.args))),
        el('td', { class: 'kwargs' }, clipped(json(item.kwargs))),
        el('td', {}, when));
    }));
  }

  function renderDead(data) {
    state.deadTotal = data.total;
    $('dead-count').textContent = data.total ? String(data.total) : '';
    $('dead-empty').hidden = data.items.length > 0;
    $('dead-requeue-all').disabled = data.total === 0;
    $('dead-delete-all').disabled = data.total === 0;
    const more = $('dead-more');
    more.hidden = data.total <= data.items.length;
    more.textContent = `Showing the oldest ${data.items.length} of ${data.total}.`;
    renderRows('dead', $('dead').tBodies[0], data, () => data.items.map((d) => {
      const target = { queue: d.queue, id: d.id };
      return el('tr', { dataset: { id: d.id, queue: d.queue } },
        el('td', { class: 'task-name' }, d.name === undefined || d.name === null ? '(unreadable)' : d.name),
        el('td', {}, d.queue),
        el('td', { class: 'args' }, clipped(json(d.args))),
        el('td', {}, d.reason || ''),
        el('td', { class: 'error' }, clipped(d.error || '', 160)),
        el('td', { class: 'num' }, d.attempts_used === null ? '' : d.attempts_used),
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
        el('td', { class: 'task-name' }, s.name),
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
    return el('td', {}, typeof value === 'object' ? json(value) : String(value));
  }

  function renderWorkers(data) {
    const note = $('workers-note');
    const table = $('workers');
    if (!data.available) {
      note.hidden = false;
      note.textContent = data.reason || 'worker registry not available';
      table.hidden = true;
      state.rendered.workers = null;
      return;
    }
    const staleText = data.stale ? ` (${data.stale} stale ${data.stale === 1 ? 'entry' : 'entries'} hidden)` : '';
    note.hidden = data.workers.length > 0 && !data.stale;
    note.textContent = data.workers.length ? staleText.trim() : `No live workers${staleText}.`;
    table.hidden = data.workers.length === 0;
    const extra = new Set();
    for (const w of data.workers) {
      for (const key of Object.keys(w)) if (!WORKER_FIELDS.includes(key)) extra.add(key);
    }
    const present = WORKER_FIELDS.filter((f) => data.workers.some((w) => w[f] !== undefined));
    const columns = [...present, ...[...extra].sort()];
    renderRows('workers-head', table.tHead.rows[0], columns, () => columns.map((c) =>
      el('th', { class: ['pid', 'threads', 'done', 'failed'].includes(c) ? 'num' : null },
        Object.prototype.hasOwnProperty.call(WORKER_LABELS, c) ? WORKER_LABELS[c] : c)));
    renderRows('workers', table.tBodies[0], data, () => data.workers.map((w) =>
      el('tr', { dataset: { id: w.id } }, ...columns.map((c) => {
        const cell = workerCell(c, w[c], data.now);
        cell.dataset.field = c;
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

  function itemsPath() {
    const q = encodeURIComponent(state.queue);
    return `/api/items?queue=${q}&page=${state.page}&per_page=${state.perPage}`;
  }

  async function refresh() {
    if (state.inFlight) return;
    state.inFlight = true;
    try {
      const calls = [get('/api/queues'), get('/api/dead'), get('/api/schedule'), get('/api/workers')];
      if (state.queue !== null) calls.push(get(itemsPath()));
      const [queues, dead, schedule, workers, items] = await Promise.all(calls);
      renderQueues(queues);
      renderDead(dead);
      renderSchedule(schedule);
      renderWorkers(workers);
      if (items) renderItems(items);
      setStatus(`updated ${fmtTime(Date.now() / 1000).slice(11)}`, true);
    } catch (err) {
      setStatus(`error: ${err.message}`, false);
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
      const button = ev.target.closest('button[data-action="open"]');
      if (button) openQueue(button.dataset.queue, 0);
    });
    $('items-close').addEventListener('click', () => openQueue(null, 0));
    $('items-prev').addEventListener('click', () => openQueue(state.queue, Math.max(0, state.page - 1)));
    $('items-next').addEventListener('click', () => openQueue(state.queue, state.page + 1));
    $('dead').addEventListener('click', (ev) => {
      const button = ev.target.closest('button[data-action]');
      if (!button) return;
      const { action, queue, id } = button.dataset;
      button.disabled = true;
      deadAction(action, { items: [{ queue, id }] }, 'dead letter');
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
    $('pause').addEventListener('click', () => {
      state.paused = !state.paused;
      $('pause').textContent = state.paused ? 'Resume' : 'Pause';
      setStatus(state.paused ? 'paused' : 'resuming…', true);
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
    if (queue !== null) {
      openQueue(queue, 0);
    } else {
      await refresh();
    }
    schedule();
  }

  start();
}());
