// The live view: asks /api/containers every few seconds while the page is
// visible, computes rates from the counters of two answers and keeps a few
// minutes of history in this tab only. Every value from the engine reaches
// the page through textContent: no markup is ever built from data.
'use strict';

(function () {
  const PERIOD_MS = 5000;
  const HISTORY = 60; // answers kept: 5 minutes at 5 s
  const api = '/api/containers' + window.location.search;

  const status = document.getElementById('status');
  const narrowed = document.getElementById('narrowed');
  if (window.location.search) {
    const terms = Array.from(new URLSearchParams(window.location.search)).map(([k, v]) => k + '=' + v);
    narrowed.textContent = ' · narrowed by ' + terms.join(', ');
  }
  const tbody = document.querySelector('#containers tbody');
  const filterInput = document.getElementById('filter');
  const count = document.getElementById('count');
  const totalGraph = document.getElementById('total-graph');

  let rows = []; // the last answer's rows, with rates
  let down = false;
  let timer = null;
  let inFlight = false;
  let sortKey = 'name';
  let sortDir = 1;
  const previous = new Map(); // key -> {at, counters}
  const history = new Map(); // key -> [{cpu, mem}]
  const totals = []; // [{at, cpu, mem}]
  let answers = 0;

  const rowKey = (c) => (c.engine || '') + '/' + c.id;

  function rate(now, before, field, dt) {
    if (!before || dt <= 0) return undefined;
    const a = now[field];
    const b = before[field];
    if (typeof a !== 'number' || typeof b !== 'number' || a < b) return undefined;
    return (a - b) / dt;
  }

  function ingest(answer) {
    const seenAt = new Map();
    for (const e of answer.engines || []) seenAt.set(e.name || '', e.seen_at);
    const next = [];
    const alive = new Set();
    let totalCpu = 0;
    let totalMem = 0;
    for (const c of answer.containers || []) {
      const key = rowKey(c);
      alive.add(key);
      const at = seenAt.get(c.engine || '') || Date.now() / 1000;
      const before = previous.get(key);
      const dt = before ? at - before.at : 0;
      const row = {
        key,
        c,
        name: c.name,
        image: c.image,
        project: c.compose_project || '',
        state: c.state + (c.health ? ' ' + c.health : ''),
        cpu: c.cpu_percent,
        cpuLimit: c.cpu_percent_of_limit,
        mem: c.memory_working_set_bytes,
        rx: rate(c, before && before.c, 'network_rx_bytes_total', dt),
        tx: rate(c, before && before.c, 'network_tx_bytes_total', dt),
        read: rate(c, before && before.c, 'fs_read_bytes_total', dt),
        write: rate(c, before && before.c, 'fs_write_bytes_total', dt),
        restarts: c.restarts,
        oom: c.oom_killed === undefined ? undefined : c.oom_killed ? 1 : 0,
        stale: false,
      };
      // Where the engine reports no block I/O, the column stays absent, not 0.
      row.ioReported = typeof c.fs_read_bytes_total === 'number';
      row.netReported = typeof c.network_rx_bytes_total === 'number';
      if (before && before.at === at) {
        // The same round again (another tab shared it): the last rates stand.
        Object.assign(row, before.rates || {});
      } else {
        previous.set(key, { at, c, rates: { rx: row.rx, tx: row.tx, read: row.read, write: row.write } });
      }
      const h = history.get(key) || [];
      h.push({ cpu: c.cpu_percent, mem: c.memory_working_set_bytes });
      if (h.length > HISTORY) h.shift();
      history.set(key, h);
      totalCpu += c.cpu_percent || 0;
      totalMem += c.memory_working_set_bytes || 0;
      next.push(row);
    }
    // Rows of an engine that did not answer keep their last values, greyed.
    const downEngines = new Set((answer.engines || []).filter((e) => !e.up).map((e) => e.name || ''));
    for (const r of rows) {
      if (!alive.has(r.key) && downEngines.has(r.c.engine || '')) {
        next.push(Object.assign({}, r, { stale: true }));
        alive.add(r.key);
      }
    }
    for (const k of Array.from(history.keys())) {
      if (!alive.has(k)) {
        history.delete(k);
        previous.delete(k);
      }
    }
    // While no engine answers the totals keep their last point.
    if ((answer.engines || []).some((e) => e.up)) {
      totals.push({ at: Date.now(), cpu: totalCpu, mem: totalMem });
      if (totals.length > HISTORY) totals.shift();
    }
    rows = next;
  }

  // Formatting.
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(n) {
    if (typeof n !== 'number') return '–';
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
  }
  const perSecond = (n) => (typeof n === 'number' ? bytes(n) + '/s' : '–');
  const percent = (n) => (typeof n === 'number' ? n.toFixed(n < 10 ? 2 : 1) + ' %' : '–');

  function cell(tr, text, cls, title) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  function compare(a, b) {
    const x = a[sortKey];
    const y = b[sortKey];
    const xa = x === undefined || x === '';
    const ya = y === undefined || y === '';
    if (xa || ya) return xa === ya ? a.name.localeCompare(b.name) : xa ? 1 : -1;
    const d = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return d !== 0 ? d * sortDir : a.name.localeCompare(b.name);
  }

  function visible() {
    const f = filterInput.value.trim().toLowerCase();
    if (!f) return rows;
    return rows.filter((r) => r.name.toLowerCase().includes(f) || r.project.toLowerCase().includes(f));
  }

  function render() {
    const shown = visible().slice().sort(compare);
    const body = document.createDocumentFragment();
    for (const r of shown) {
      const c = r.c;
      const tr = document.createElement('tr');
      tr.dataset.name = c.name;
      if (r.stale || down) tr.className = 'stale';
      const name = cell(tr, c.name, 'name', c.id);
      if (c.engine) {
        const sub = document.createElement('span');
        sub.className = 'sub';
        sub.textContent = 'engine ' + c.engine;
        name.appendChild(sub);
      }
      cell(tr, c.image, 'image');
      const compose = cell(tr, c.compose_project || '', 'compose');
      if (c.compose_service) {
        const sub = document.createElement('span');
        sub.className = 'sub';
        sub.textContent = c.compose_service;
        compose.appendChild(sub);
      }
      cell(tr, r.state, 'state' + (c.health === 'unhealthy' ? ' bad' : ''), c.status);
      cell(tr, percent(r.cpu), 'num cpu');
      cell(
        tr,
        typeof r.cpuLimit === 'number' ? percent(r.cpuLimit) : c.cpu_limit_cores ? '–' : 'no limit',
        'num cpu-limit',
        c.cpu_limit_cores ? 'limit ' + c.cpu_limit_cores + ' CPUs' : '',
      );
      const memText =
        typeof r.mem === 'number'
          ? bytes(r.mem) + (c.memory_limit_bytes ? ' / ' + bytes(c.memory_limit_bytes) + ' (' + percent((100 * r.mem) / c.memory_limit_bytes) + ')' : '')
          : '–';
      const mem = cell(tr, memText, 'num mem');
      if (typeof r.mem === 'number') mem.dataset.bytes = String(r.mem);
      cell(tr, r.netReported ? perSecond(r.rx) : 'n/a', 'num rx' + (r.netReported ? '' : ' absent'));
      cell(tr, r.netReported ? perSecond(r.tx) : 'n/a', 'num tx' + (r.netReported ? '' : ' absent'));
      const noIo = 'the engine reports no block I/O for it';
      cell(tr, r.ioReported ? perSecond(r.read) : 'n/a', 'num read' + (r.ioReported ? '' : ' absent'), r.ioReported ? '' : noIo);
      cell(tr, r.ioReported ? perSecond(r.write) : 'n/a', 'num write' + (r.ioReported ? '' : ' absent'), r.ioReported ? '' : noIo);
      cell(tr, typeof r.restarts === 'number' ? String(r.restarts) : '–', 'num restarts');
      cell(tr, r.oom === undefined ? '–' : r.oom ? 'yes' : 'no', 'num oom' + (r.oom ? ' bad' : ''));
      const trend = cell(tr, '', 'trend');
      const canvas = document.createElement('canvas');
      canvas.width = 120;
      canvas.height = 28;
      trend.appendChild(canvas);
      sparkline(canvas, history.get(r.key) || []);
      body.appendChild(tr);
    }
    tbody.replaceChildren(body);
    count.textContent = shown.length + ' of ' + rows.length + ' containers';
    for (const th of document.querySelectorAll('th[data-key]')) {
      if (th.dataset.key === sortKey) th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    drawTotals();
  }

  function line(ctx, values, w, h, color, pad) {
    const nums = values.filter((v) => typeof v === 'number');
    if (nums.length < 1) return;
    const max = Math.max(...nums) || 1;
    const step = w / Math.max(HISTORY - 1, 1);
    const x0 = w - (values.length - 1) * step;
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    values.forEach((v, i) => {
      if (typeof v !== 'number') {
        started = false;
        return;
      }
      const x = x0 + i * step;
      const y = h - pad - (v / max) * (h - 2 * pad);
      if (started) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      started = true;
    });
    ctx.stroke();
  }

  function sparkline(canvas, points) {
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    line(ctx, points.map((p) => p.mem), canvas.width, canvas.height, '#d97706', 3);
    line(ctx, points.map((p) => p.cpu), canvas.width, canvas.height, '#2563eb', 3);
  }

  function drawTotals() {
    const ctx = totalGraph.getContext('2d');
    if (!ctx) return;
    const { width: w, height: h } = totalGraph;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = '#e5e7eb';
    ctx.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      ctx.beginPath();
      ctx.moveTo(0, (h * i) / 4);
      ctx.lineTo(w, (h * i) / 4);
      ctx.stroke();
    }
    line(ctx, totals.map((t) => t.mem), w, h, '#d97706', 6);
    line(ctx, totals.map((t) => t.cpu), w, h, '#2563eb', 6);
    const last = totals[totals.length - 1];
    document.getElementById('total-cpu').textContent = last ? percent(last.cpu) + ' of the host' : '–';
    document.getElementById('total-mem').textContent = last ? bytes(last.mem) : '–';
    const span = totals.length > 1 ? Math.round((last.at - totals[0].at) / 1000) : 0;
    document.getElementById('window').textContent = span ? 'last ' + span + ' s (each line scaled to its own maximum)' : '';
  }

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    document.body.classList.toggle('stale', state === 'down');
  }

  async function poll() {
    timer = null;
    if (document.visibilityState === 'hidden' || inFlight) return;
    inFlight = true;
    const started = Date.now();
    try {
      let answer = null;
      let failure = null;
      try {
        const res = await fetch(api, { cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'application/json' } });
        try {
          answer = await res.json();
        } catch (e) {
          answer = null;
        }
        if (!res.ok) failure = (answer && answer.error) || 'HTTP ' + res.status;
      } catch (e) {
        failure = 'exporter not answering';
      }
      answers++;
      document.body.dataset.answers = String(answers);
      if (answer && Array.isArray(answer.containers) && Array.isArray(answer.engines)) ingest(answer);
      down = failure !== null;
      if (down) {
        const text = /not answering/.test(failure) ? failure : 'engine not answering: ' + failure;
        setStatus('down', text + ' (showing the last values)');
      } else {
        const at = new Date();
        setStatus('ok', 'live · updated ' + at.toLocaleTimeString() + ' · every ' + PERIOD_MS / 1000 + ' s while visible');
      }
      render();
    } finally {
      inFlight = false;
      // One request every PERIOD_MS from start to start, never two at once.
      schedule(Math.max(0, PERIOD_MS - (Date.now() - started)));
    }
  }

  function schedule(delay) {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (document.visibilityState !== 'hidden') timer = setTimeout(poll, delay);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    } else if (!inFlight) {
      poll();
    }
  });

  for (const th of document.querySelectorAll('th[data-key]')) {
    th.addEventListener('click', () => {
      const key = th.dataset.key;
      if (key === sortKey) sortDir = -sortDir;
      else {
        sortKey = key;
        // Text ascending, numbers highest first.
        sortDir = th.dataset.type === 'text' ? 1 : -1;
      }
      render();
    });
  }
  filterInput.addEventListener('input', render);
  poll();
})();
