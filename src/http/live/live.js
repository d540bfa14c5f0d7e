// The live view: asks /api/containers every few seconds while the page is
// visible, computes rates from the counters of two answers and keeps 15
// minutes of history in this tab (sessionStorage: it survives a reload of
// the tab, nothing else). Every value from the engine reaches the page
// through textContent: no markup is ever built from data.
'use strict';

(function () {
  const PERIOD_MS = 5000;
  const HISTORY = 180; // answers kept per container: 15 minutes at 5 s
  const TREND = 60; // a row's trend: the last 5 minutes
  const LIVE_STATES = new Set(['running', 'paused', 'restarting']);
  const COLORS = { cpu: '#1d4ed8', mem: '#b45309', limit: '#9ca3af', rx: '#047857', tx: '#7c3aed', read: '#0e7490', write: '#be185d' };

  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(window.location.search);
  const storageKey = 'dse-live:' + window.location.pathname + window.location.search;

  // Preferences outlive the tab (localStorage); history only the tab.
  function storage(kind) {
    try {
      const s = window[kind];
      s.getItem('x');
      return s;
    } catch (e) {
      return null;
    }
  }
  const prefs = storage('localStorage');
  const tabStore = storage('sessionStorage');
  const pref = (name, fallback) => (prefs && prefs.getItem('dse-' + name)) || fallback;
  const setPref = (name, value) => {
    if (prefs) prefs.setItem('dse-' + name, value);
  };

  const el = {
    status: $('status'),
    list: $('list-view'),
    detail: $('detail-view'),
    table: $('containers'),
    filter: $('filter'),
    stateFilter: $('state-filter'),
    sort: $('sort'),
    group: $('group-projects'),
    stopped: $('show-stopped'),
    dismissAll: $('dismiss-all'),
    unit: $('cpu-unit'),
    empty: $('empty'),
  };

  if (window.location.search) {
    const terms = Array.from(query).map(([k, v]) => k + '=' + v);
    $('narrowed').textContent = ' · narrowed by ' + terms.join(', ');
  }

  // What the page knows.
  const rows = new Map(); // key -> row: {key, c, rates, gone, kept, stale, restartsAtOpen, firstSeen}
  const history = new Map(); // key -> [{t, cpu, mem, rx, tx, read, write, pids}]
  const previous = new Map(); // key -> {at, rx, tx, read, write}
  const dismissed = new Set(); // keys of stopped rows the user put away
  const engines = new Map(); // engine name ('' alone) -> {cpus, memory, up, error, host}
  let lastFailure = null; // {kind: 'query' | 'engine' | 'exporter', text}
  let answers = 0;
  let timer = null;
  let inFlight = false;
  let sortKey = pref('sort', 'name');
  let sortDir = Number(pref('sort-dir', '1')) || 1;
  let unit = pref('cpu-unit', 'host');
  const collapsed = new Set(JSON.parse(pref('collapsed', '[]')));
  el.unit.value = unit;
  el.sort.value = sortKey;
  el.stopped.checked = pref('show-stopped', '') === 'true';
  el.group.checked = pref('group', 'true') === 'true';

  const rowKey = (c) => (c.engine || '') + '/' + c.id;
  const num = (v) => typeof v === 'number' && isFinite(v);
  const isLive = (c) => LIVE_STATES.has(c.state);

  // The engine's CPUs: docker stats' percent is of one core, ours of all.
  function cpusOf(row) {
    const e = engines.get(row.c.engine || '');
    return e && num(e.cpus) ? e.cpus : undefined;
  }
  function cpuShown(row, hostPercent) {
    if (!num(hostPercent)) return undefined;
    if (unit === 'core') {
      const n = cpusOf(row);
      return num(n) ? hostPercent * n : undefined;
    }
    return hostPercent;
  }

  // ---- Answers -------------------------------------------------------

  function rate(now, before, dt) {
    if (!num(now) || !num(before) || dt <= 0 || now < before) return undefined;
    return (now - before) / dt;
  }

  function takeEngines(list) {
    for (const e of list || []) {
      engines.set(e.name || '', { cpus: e.cpus, memory: e.memory_bytes, up: !!e.up, error: e.error, host: e.host });
    }
  }

  /// One container of an answer into its row, its rates and its history.
  function upsert(c, at, t) {
    const key = rowKey(c);
    let row = rows.get(key);
    if (!row) {
      row = { key, rates: {}, restartsAtOpen: c.restarts, firstSeen: t };
      rows.set(key, row);
    }
    row.c = c;
    row.stale = false;
    if (isLive(c)) {
      row.gone = false;
      row.kept = false;
      row.seenLive = true;
      dismissed.delete(key);
    } else {
      row.gone = true;
      // Stopped while this page watched it: kept until dismissed.
      if (row.seenLive) row.kept = true;
    }
    if (!num(row.restartsAtOpen) && num(c.restarts)) row.restartsAtOpen = c.restarts;
    const before = previous.get(key);
    if (!before || before.at !== at) {
      const dt = before ? at - before.at : 0;
      row.rates = {
        rx: rate(c.network_rx_bytes_total, before && before.rx, dt),
        tx: rate(c.network_tx_bytes_total, before && before.tx, dt),
        read: rate(c.fs_read_bytes_total, before && before.read, dt),
        write: rate(c.fs_write_bytes_total, before && before.write, dt),
      };
      previous.set(key, { at, rx: c.network_rx_bytes_total, tx: c.network_tx_bytes_total, read: c.fs_read_bytes_total, write: c.fs_write_bytes_total });
      if (isLive(c)) {
        const h = history.get(key) || [];
        h.push({ t, cpu: c.cpu_percent, mem: c.memory_working_set_bytes, rx: row.rates.rx, tx: row.rates.tx, read: row.rates.read, write: row.rates.write, pids: c.pids });
        while (h.length > HISTORY) h.shift();
        history.set(key, h);
      }
    }
    // Else the same round again (another tab shared it): the rates stand.
    return key;
  }

  /// An answer of the page's own request. Returns the rows that left it
  /// while their engine answered: stopped or removed since.
  function ingest(answer) {
    const t = Date.now();
    takeEngines(answer.engines);
    const seenAt = new Map((answer.engines || []).map((e) => [e.name || '', e.seen_at]));
    const present = new Set();
    for (const c of answer.containers || []) {
      present.add(upsert(c, seenAt.get(c.engine || '') || t / 1000, t));
    }
    const vanished = [];
    for (const [key, row] of rows) {
      if (present.has(key)) continue;
      const e = engines.get(row.c.engine || '');
      if (!e || !e.up) {
        row.stale = true; // its engine did not answer: the last values, greyed
      } else if (row.gone) {
        if (!row.kept) forget(key); // shown by the stopped switch, now off
      } else {
        vanished.push(row);
      }
    }
    return vanished;
  }

  function forget(key) {
    rows.delete(key);
    history.delete(key);
    previous.delete(key);
    dismissed.delete(key);
  }

  /// Rows that left the answer: one request by name (names select stopped
  /// containers too) says which stopped, with their exit code, and which
  /// are gone for good.
  async function lookUp(vanished) {
    const params = new URLSearchParams();
    for (const r of vanished) params.append('name', r.c.name);
    let answer = null;
    try {
      const res = await fetch('/api/containers?' + params, { cache: 'no-store', credentials: 'same-origin' });
      if (res.ok || res.status === 503) answer = await res.json();
    } catch (e) {
      answer = null;
    }
    if (!answer) {
      // No word on them: greyed, and asked about again after the next answer.
      for (const r of vanished) r.stale = true;
      return;
    }
    const found = new Map();
    for (const c of (answer && answer.containers) || []) found.set(rowKey(c), c);
    for (const r of vanished) {
      const c = found.get(r.key);
      if (c && !isLive(c)) {
        r.c = Object.assign({}, c);
        r.gone = true;
        r.kept = true;
      } else if (!c) {
        forget(r.key);
      }
    }
  }

  // ---- History across a reload of the tab ------------------------------

  function save() {
    if (!tabStore) return;
    const state = {
      v: 1,
      rows: Array.from(rows.values()).filter((r) => r.kept || !r.gone),
      history: Array.from(history),
      previous: Array.from(previous),
      dismissed: Array.from(dismissed),
    };
    let text = JSON.stringify(state);
    try {
      tabStore.setItem(storageKey, text);
    } catch (e) {
      // Over the tab's quota: keep the newer half of each history.
      for (const [, h] of state.history) h.splice(0, h.length >> 1);
      text = JSON.stringify(state);
      try {
        tabStore.setItem(storageKey, text);
      } catch (e2) {
        tabStore.removeItem(storageKey);
      }
    }
  }

  function restore() {
    if (!tabStore) return;
    let state = null;
    try {
      state = JSON.parse(tabStore.getItem(storageKey) || 'null');
    } catch (e) {
      state = null;
    }
    if (!state || state.v !== 1) return;
    const oldest = Date.now() - HISTORY * PERIOD_MS;
    for (const r of state.rows || []) {
      if (r && r.key && r.c) rows.set(r.key, Object.assign(r, { stale: true }));
    }
    for (const [key, h] of state.history || []) {
      const kept = (h || []).filter((p) => p && p.t >= oldest);
      if (kept.length) history.set(key, kept);
    }
    for (const [key, p] of state.previous || []) previous.set(key, p);
    for (const key of state.dismissed || []) dismissed.add(key);
  }

  // ---- Formatting -----------------------------------------------------

  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(n) {
    if (!num(n)) return '–';
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
  }
  const perSecond = (n) => (num(n) ? bytes(n) + '/s' : '–');
  const percent = (n) => (num(n) ? n.toFixed(n < 10 ? 2 : 1) + ' %' : '–');
  function ago(unixSeconds) {
    if (!num(unixSeconds)) return '';
    const s = Math.max(0, Date.now() / 1000 - unixSeconds);
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' days';
  }
  const when = (unixSeconds) => (num(unixSeconds) ? new Date(unixSeconds * 1000).toLocaleString() : '');
  const cpuUnitText = () => (unit === 'core' ? 'of one core' : 'of the host');

  function node(tag, text, cls) {
    const n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = text;
    if (cls) n.className = cls;
    return n;
  }

  // ---- Which rows, in which order --------------------------------------

  function stateText(c) {
    if (isLive(c)) return c.state + (c.health ? ' (' + c.health + ')' : '');
    return c.state + (num(c.exit_code) ? ' (' + c.exit_code + ')' : '');
  }

  function sortValue(row, key) {
    const c = row.c;
    switch (key) {
      case 'name': return c.name;
      case 'image': return c.image;
      case 'state': return stateText(c);
      case 'cpu': return row.gone ? undefined : c.cpu_percent;
      case 'mem': return row.gone ? undefined : c.memory_working_set_bytes;
      case 'net': return num(row.rates.rx) || num(row.rates.tx) ? (row.rates.rx || 0) + (row.rates.tx || 0) : undefined;
      case 'io': return num(row.rates.read) || num(row.rates.write) ? (row.rates.read || 0) + (row.rates.write || 0) : undefined;
      case 'pids': return row.gone ? undefined : c.pids;
      case 'restarts': return c.restarts;
      default: return undefined;
    }
  }

  function compare(a, b) {
    const x = sortValue(a, sortKey);
    const y = sortValue(b, sortKey);
    const xa = x === undefined || x === '';
    const ya = y === undefined || y === '';
    if (xa || ya) return xa === ya ? a.c.name.localeCompare(b.c.name) : xa ? 1 : -1;
    const d = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return d !== 0 ? d * sortDir : a.c.name.localeCompare(b.c.name);
  }

  function crashing(row) {
    return row.c.state === 'restarting' || (num(row.c.restarts) && num(row.restartsAtOpen) && row.c.restarts > row.restartsAtOpen);
  }

  function matchesState(row, want) {
    if (!want) return true;
    if (want === 'stopped') return row.gone;
    if (want === 'unhealthy') return row.c.health === 'unhealthy';
    return row.c.state === want;
  }

  /// The rows the filter and state choice leave, dismissed ones aside.
  function visible() {
    const f = el.filter.value.trim().toLowerCase();
    const want = el.stateFilter.value;
    const out = [];
    for (const row of rows.values()) {
      if (dismissed.has(row.key)) continue;
      if (!matchesState(row, want)) continue;
      const c = row.c;
      const text = [c.name, c.image, c.compose_project || '', c.compose_service || ''].join('\n').toLowerCase();
      if (f && !text.includes(f)) continue;
      out.push(row);
    }
    return out.sort(compare);
  }

  /// Sums over rows that are running now (stopped and stale rows aside).
  function totalsOf(list) {
    const t = { cpu: 0, cores: 0, mem: 0, rx: 0, tx: 0, read: 0, write: 0, net: false, io: false, n: 0 };
    const enginesShown = new Set();
    for (const row of list) {
      if (row.gone || row.stale) continue;
      const c = row.c;
      t.n++;
      enginesShown.add(row.c.engine || '');
      if (num(c.cpu_percent)) {
        t.cpu += c.cpu_percent;
        const n = cpusOf(row);
        if (num(n)) t.cores += (c.cpu_percent * n) / 100;
      }
      if (num(c.memory_working_set_bytes)) t.mem += c.memory_working_set_bytes;
      for (const k of ['rx', 'tx', 'read', 'write']) if (num(row.rates[k])) t[k] += row.rates[k];
      t.net = t.net || num(row.rates.rx);
      t.io = t.io || num(row.rates.read);
    }
    t.cpus = 0;
    t.memory = 0;
    for (const name of enginesShown.size ? enginesShown : engines.keys()) {
      const e = engines.get(name);
      if (e && num(e.cpus)) t.cpus += e.cpus;
      if (e && num(e.memory)) t.memory += e.memory;
    }
    return t;
  }

  // ---- The list -------------------------------------------------------

  function cell(tr, cls, text, label, title) {
    const td = node('td', text, cls);
    if (label) td.dataset.label = label;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  function cpuCell(tr, row) {
    const c = row.c;
    const shown = row.gone ? undefined : cpuShown(row, c.cpu_percent);
    const td = cell(tr, 'num cpu', percent(shown), 'CPU, % ' + cpuUnitText());
    if (num(shown)) td.dataset.value = String(shown);
    if (num(c.cpu_percent_of_limit) && !row.gone) {
      td.appendChild(node('span', percent(c.cpu_percent_of_limit) + ' of ' + c.cpu_limit_cores + ' CPU limit', 'sub'));
    }
    return td;
  }

  function memCell(tr, row) {
    const c = row.c;
    const m = row.gone ? undefined : c.memory_working_set_bytes;
    const td = cell(tr, 'num mem', bytes(m), 'Memory');
    if (num(m)) td.dataset.bytes = String(m);
    if (num(m) && num(c.memory_limit_bytes)) {
      td.appendChild(node('span', percent((100 * m) / c.memory_limit_bytes) + ' of ' + bytes(c.memory_limit_bytes), 'sub'));
    }
    return td;
  }

  function pairCell(tr, cls, label, reported, a, b, absentWhy) {
    if (!reported) return cell(tr, 'num absent ' + cls, 'n/a', label, absentWhy);
    const td = cell(tr, 'num ' + cls, perSecond(a), label);
    td.appendChild(node('span', perSecond(b), 'sub'));
    return td;
  }

  function nameCell(tr, row) {
    const c = row.c;
    const td = cell(tr, 'name', undefined, undefined, c.name + (c.engine ? ' · engine ' + c.engine : '') + '\n' + c.id);
    const a = node('a', c.name);
    a.href = '#c=' + encodeURIComponent(row.key);
    td.appendChild(a);
    if (row.gone && row.kept) {
      const b = node('button', '×', 'dismiss');
      b.type = 'button';
      b.title = 'dismiss ' + c.name;
      b.setAttribute('aria-label', 'dismiss ' + c.name);
      b.addEventListener('click', () => {
        dismissed.add(row.key);
        save();
        render();
      });
      td.appendChild(b);
    }
    const sub = [c.compose_service ? 'service ' + c.compose_service : '', c.engine ? 'engine ' + c.engine : ''].filter(Boolean).join(' · ');
    if (sub) td.appendChild(node('span', sub, 'sub'));
    return td;
  }

  function stateCell(tr, row) {
    const c = row.c;
    const td = cell(tr, 'state' + (c.health === 'unhealthy' ? ' bad' : ''), stateText(c), 'State', c.status);
    if (row.gone) {
      td.dataset.exitCode = num(c.exit_code) ? String(c.exit_code) : '';
      if (c.oom_killed) td.appendChild(node('span', 'OOM', 'badge'));
      if (num(c.finished_at)) {
        const s = node('span', ago(c.finished_at) + ' ago', 'sub');
        s.title = when(c.finished_at);
        td.appendChild(s);
      }
    } else {
      if (crashing(row)) td.appendChild(node('span', 'crash loop', 'badge'));
      if (c.state === 'running' && num(c.started_at)) {
        const s = node('span', 'up ' + ago(c.started_at), 'sub');
        s.title = 'started ' + when(c.started_at);
        td.appendChild(s);
      }
    }
    return td;
  }

  function rowElement(row) {
    const c = row.c;
    const tr = node('tr', undefined, 'row');
    tr.dataset.name = c.name;
    tr.dataset.key = row.key;
    if (row.gone) tr.classList.add('gone');
    if (row.stale) tr.classList.add('stale');
    if (crashing(row)) tr.classList.add('crash');
    nameCell(tr, row);
    cell(tr, 'image', c.image, 'Image', c.image);
    stateCell(tr, row);
    cpuCell(tr, row);
    memCell(tr, row);
    const live = !row.gone;
    pairCell(tr, 'net', 'Net ↓ / ↑', live && num(c.network_rx_bytes_total), row.rates.rx, row.rates.tx, 'the engine reports no network for it');
    pairCell(tr, 'io', 'Block r / w', live && num(c.fs_read_bytes_total), row.rates.read, row.rates.write, 'the engine reports no block I/O for it');
    cell(tr, 'num pids', live && num(c.pids) ? String(c.pids) : '–', 'PIDs');
    const restarts = cell(tr, 'num restarts', num(c.restarts) ? String(c.restarts) : '–', 'Restarts');
    if (num(c.restarts) && num(row.restartsAtOpen) && c.restarts > row.restartsAtOpen) {
      restarts.title = '+' + (c.restarts - row.restartsAtOpen) + ' since this page opened';
    }
    const trend = cell(tr, 'trend');
    const canvas = document.createElement('canvas');
    canvas.width = 120;
    canvas.height = 28;
    trend.appendChild(canvas);
    sparkline(canvas, (history.get(row.key) || []).slice(-TREND));
    return tr;
  }

  function groupHead(project, list, open) {
    const tr = node('tr', undefined, 'group-head');
    tr.dataset.project = project;
    const th = node('th');
    th.colSpan = 10;
    th.scope = 'rowgroup';
    const b = node('button', (open ? '▾ ' : '▸ ') + project);
    b.type = 'button';
    b.setAttribute('aria-expanded', String(open));
    b.addEventListener('click', () => {
      if (collapsed.has(project)) collapsed.delete(project);
      else collapsed.add(project);
      setPref('collapsed', JSON.stringify(Array.from(collapsed)));
      render();
    });
    th.appendChild(b);
    const t = totalsOf(list);
    const text = list.length + ' containers · CPU ' + percent(unit === 'core' ? t.cores * 100 : t.cpu) + ' · memory ' + bytes(t.mem) + (t.net ? ' · net ' + perSecond(t.rx + t.tx) : '');
    const span = node('span', text, 'gtotals');
    span.dataset.cpu = String(unit === 'core' ? t.cores * 100 : t.cpu);
    span.dataset.mem = String(t.mem);
    th.appendChild(span);
    tr.appendChild(th);
    return tr;
  }

  function renderList() {
    const shown = visible();
    for (const tb of Array.from(el.table.tBodies)) tb.remove();
    const groups = new Map();
    for (const row of shown) {
      const p = el.group.checked ? row.c.compose_project || '' : '';
      if (!groups.has(p)) groups.set(p, []);
      groups.get(p).push(row);
    }
    const names = Array.from(groups.keys()).sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)));
    for (const p of names) {
      const list = groups.get(p);
      const tb = document.createElement('tbody');
      if (p !== '') {
        const open = !collapsed.has(p);
        tb.appendChild(groupHead(p, list, open));
        if (!open) {
          el.table.appendChild(tb);
          continue;
        }
      }
      for (const row of list) tb.appendChild(rowElement(row));
      el.table.appendChild(tb);
    }
    const total = Array.from(rows.keys()).filter((k) => !dismissed.has(k)).length;
    $('count').textContent = shown.length + ' of ' + total;
    el.empty.textContent = shown.length ? '' : total ? 'No container matches the filter.' : lastFailure || !answers ? '' : 'No container is selected.';
    el.empty.hidden = !el.empty.textContent;
    el.dismissAll.hidden = !Array.from(rows.values()).some((r) => r.gone && r.kept && !dismissed.has(r.key));
    for (const th of el.table.querySelectorAll('th[data-key]')) {
      if (th.dataset.key === sortKey) th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    $('cpu-head').textContent = unit === 'core' ? 'core' : 'host';
    renderTotals(shown);
  }

  function renderTotals(shown) {
    const t = totalsOf(shown);
    const cpu = $('total-cpu');
    const cpuValue = unit === 'core' ? t.cores * 100 : t.cpu;
    cpu.textContent = t.n ? percent(cpuValue) + ' ' + cpuUnitText() + (t.cpus ? ' · ' + t.cores.toFixed(2) + ' of ' + t.cpus + ' CPUs' : '') : '–';
    cpu.dataset.value = String(cpuValue);
    const mem = $('total-mem');
    mem.textContent = t.n ? bytes(t.mem) + (t.memory ? ' of ' + bytes(t.memory) + ' (' + percent((100 * t.mem) / t.memory) + ')' : '') : '–';
    mem.dataset.value = String(t.mem);
    $('total-net').textContent = t.net ? perSecond(t.rx) + ' / ' + perSecond(t.tx) : '–';
    $('total-io').textContent = t.io ? perSecond(t.read) + ' / ' + perSecond(t.write) : '–';
    // Their history: per answer, the sum over the rows shown.
    const sums = new Map();
    for (const row of shown) {
      if (row.gone) continue;
      const n = cpusOf(row) || 1;
      for (const p of history.get(row.key) || []) {
        const s = sums.get(p.t) || { cpu: 0, mem: 0 };
        if (num(p.cpu)) s.cpu += unit === 'core' ? p.cpu * n : p.cpu;
        if (num(p.mem)) s.mem += p.mem;
        sums.set(p.t, s);
      }
    }
    const times = Array.from(sums.keys()).sort((a, b) => a - b);
    const cpuMax = unit === 'core' ? (t.cpus || 1) * 100 : 100;
    $('total-cpu-caption').textContent = 'CPU of the containers shown, % ' + cpuUnitText() + ' (axis up to the host: ' + (t.cpus || '?') + ' CPUs)';
    graph($('total-cpu-graph'), [{ name: 'CPU', color: COLORS.cpu, points: times.map((x) => [x, sums.get(x).cpu]) }], { format: percent, max: cpuMax });
    graph($('total-mem-graph'), [{ name: 'memory', color: COLORS.mem, points: times.map((x) => [x, sums.get(x).mem]) }], { format: bytes, max: t.memory || undefined });
  }

  // ---- Graphs -----------------------------------------------------------

  function sparkline(canvas, points) {
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    const { width: w, height: h } = canvas;
    ctx.clearRect(0, 0, w, h);
    for (const [field, color] of [['mem', COLORS.mem], ['cpu', COLORS.cpu]]) {
      const values = points.map((p) => p[field]);
      const nums = values.filter(num);
      if (nums.length < 2) continue;
      const max = Math.max(...nums) || 1;
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let started = false;
      values.forEach((v, i) => {
        if (!num(v)) {
          started = false;
          return;
        }
        const x = (i / (values.length - 1)) * (w - 2) + 1;
        const y = h - 3 - (v / max) * (h - 6);
        if (started) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
        started = true;
      });
      ctx.stroke();
    }
  }

  /// A tick step of 1, 2 or 5 times a power of ten (of 1024 for bytes)
  /// that puts about four lines under `max`.
  function niceMax(max, binary) {
    if (!(max > 0)) return 1;
    const base = binary && max >= 1024 ? 1024 : 10;
    let scale = 1;
    if (base === 1024) while (max / scale >= 1024) scale *= 1024;
    const m = max / scale;
    const pow = Math.pow(10, Math.floor(Math.log10(m)));
    for (const f of [1, 2, 2.5, 5, 10]) if (f * pow * 4 >= m) return f * pow * 4 * scale;
    return 40 * pow * scale;
  }

  const graphs = new WeakMap(); // canvas -> {series, opts, hover}

  /// A line graph with axes: `series` [{name, color, points: [[ms, value]]}],
  /// `opts` {format, max (a fixed top, the host's or the limit), limit (a
  /// dashed line), binary}. Hover or arrow keys show the values of one answer.
  function graph(canvas, series, opts) {
    const old = graphs.get(canvas);
    graphs.set(canvas, { series, opts, hover: old ? old.hover : null });
    draw(canvas);
  }

  function draw(canvas) {
    const g = graphs.get(canvas);
    const ctx = canvas.getContext('2d');
    if (!g || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 300;
    const cssH = canvas.clientHeight || 140;
    if (canvas.width !== Math.round(cssW * dpr)) canvas.width = Math.round(cssW * dpr);
    if (canvas.height !== Math.round(cssH * dpr)) canvas.height = Math.round(cssH * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const { series, opts } = g;
    const all = series.flatMap((s) => s.points);
    const values = all.map((p) => p[1]).filter(num);
    const times = all.map((p) => p[0]);
    const left = 64;
    const bottom = 18;
    const top = 6;
    const right = 8;
    const w = cssW - left - right;
    const h = cssH - top - bottom;
    let max = opts.max || niceMax(Math.max(opts.limit || 0, ...values, 0) * 1.05, opts.binary);
    if (!opts.max && !(max > 0)) max = 1;
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#5b6472';
    ctx.strokeStyle = '#e5e7eb';
    ctx.lineWidth = 1;
    ctx.textBaseline = 'middle';
    if (!times.length || !values.length) {
      ctx.textAlign = 'left';
      ctx.fillText(times.length ? 'not reported by the engine' : 'waiting for answers…', left + 6, top + h / 2);
      g.geom = null;
      return;
    }
    ctx.textAlign = 'right';
    for (let i = 0; i <= 4; i++) {
      const y = top + h - (i / 4) * h;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y) + 0.5);
      ctx.lineTo(left + w, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillText(opts.format((max * i) / 4), left - 4, y);
    }
    const t1 = Math.max(...times);
    const t0 = Math.min(Math.min(...times), t1 - 60000);
    const x = (t) => left + ((t - t0) / (t1 - t0 || 1)) * w;
    const y = (v) => top + h - (Math.min(v, max) / max) * h;
    // As many time labels as fit: one per 110 px, the first and last
    // aligned to the plot's edges.
    ctx.textBaseline = 'top';
    const ticks = Math.max(1, Math.min(4, Math.floor(w / 110)));
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + ((t1 - t0) * i) / ticks;
      ctx.textAlign = i === 0 ? 'left' : i === ticks ? 'right' : 'center';
      ctx.fillText(new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }), x(t), top + h + 3);
    }
    if (num(opts.limit) && opts.limit > 0) {
      ctx.strokeStyle = COLORS.limit;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(left, y(opts.limit));
      ctx.lineTo(left + w, y(opts.limit));
      ctx.stroke();
      ctx.setLineDash([]);
    }
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      let started = false;
      for (const [t, v] of s.points) {
        if (!num(v)) {
          started = false;
          continue;
        }
        if (started) ctx.lineTo(x(t), y(v));
        else ctx.moveTo(x(t), y(v));
        started = true;
      }
      ctx.stroke();
      if (s.points.length === 1 && num(s.points[0][1])) {
        ctx.fillStyle = s.color;
        ctx.fillRect(x(s.points[0][0]) - 2, y(s.points[0][1]) - 2, 4, 4);
      }
    }
    g.geom = { left, w, t0, t1, x };
    showHover(canvas);
  }

  /// The values of every series at the answer nearest the hover.
  function showHover(canvas) {
    const g = graphs.get(canvas);
    const tip = canvas.parentElement.querySelector('.tip');
    if (!g || !tip) return;
    if (g.hover === null || !g.geom) {
      tip.textContent = '';
      return;
    }
    const points = g.series.flatMap((s) => s.points.map((p) => p[0]));
    if (!points.length) return;
    const t = points.reduce((best, p) => (Math.abs(p - g.hover) < Math.abs(best - g.hover) ? p : best), points[0]);
    const lines = [new Date(t).toLocaleTimeString()];
    for (const s of g.series) {
      const p = s.points.find((q) => q[0] === t);
      lines.push(s.name + ': ' + (p && num(p[1]) ? g.opts.format(p[1]) : '–'));
    }
    tip.textContent = lines.join('\n');
    const ctx = canvas.getContext('2d');
    if (ctx) {
      const xx = g.geom.x(t);
      ctx.strokeStyle = '#1d2330';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(xx, 6);
      ctx.lineTo(xx, canvas.clientHeight - 18);
      ctx.stroke();
    }
  }

  function hoverable(canvas) {
    const at = (ev) => {
      const g = graphs.get(canvas);
      if (!g || !g.geom) return null;
      const r = canvas.getBoundingClientRect();
      const frac = (ev.clientX - r.left - g.geom.left) / g.geom.w;
      return g.geom.t0 + Math.min(Math.max(frac, 0), 1) * (g.geom.t1 - g.geom.t0);
    };
    canvas.addEventListener('mousemove', (ev) => {
      const g = graphs.get(canvas);
      if (!g) return;
      g.hover = at(ev);
      draw(canvas);
    });
    canvas.addEventListener('mouseleave', () => {
      const g = graphs.get(canvas);
      if (!g) return;
      g.hover = null;
      draw(canvas);
    });
    canvas.addEventListener('keydown', (ev) => {
      const g = graphs.get(canvas);
      if (!g || !g.geom) return;
      const times = Array.from(new Set(g.series.flatMap((s) => s.points.map((p) => p[0])))).sort((a, b) => a - b);
      if (!times.length) return;
      let i = g.hover === null ? times.length - 1 : times.findIndex((t) => t >= g.hover);
      if (ev.key === 'ArrowLeft') i = Math.max(0, (i < 0 ? times.length : i) - 1);
      else if (ev.key === 'ArrowRight') i = Math.min(times.length - 1, i + 1);
      else if (ev.key === 'Escape') i = null;
      else return;
      ev.preventDefault();
      g.hover = i === null ? null : times[i];
      draw(canvas);
    });
    canvas.addEventListener('blur', () => {
      const g = graphs.get(canvas);
      if (g) g.hover = null;
      draw(canvas);
    });
  }
  for (const c of document.querySelectorAll('.graph canvas')) hoverable(c);

  // ---- A container's page -------------------------------------------------

  function fact(dl, key, label, text, value) {
    const div = node('div');
    div.dataset.fact = key;
    div.appendChild(node('dt', label));
    const dd = node('dd', text);
    if (num(value)) dd.dataset.value = String(value);
    div.appendChild(dd);
    dl.appendChild(div);
  }

  function renderDetail(key) {
    const row = rows.get(key);
    $('d-missing').hidden = !!row;
    if (!row) {
      $('d-name').textContent = 'Container';
      $('d-sub').textContent = '';
      $('d-missing').textContent = answers ? 'This container is not in the view: it was removed, or the address narrows the view to others.' : 'loading…';
      $('d-facts').replaceChildren();
      return;
    }
    const c = row.c;
    document.title = c.name + ' · docker-stats-exporter';
    $('d-name').textContent = c.name;
    $('d-sub').textContent = [c.image, 'id ' + c.id.slice(0, 12), c.compose_project ? 'Compose ' + c.compose_project + (c.compose_service ? ' / ' + c.compose_service : '') : '', c.engine ? 'engine ' + c.engine : ''].filter(Boolean).join(' · ');
    const dl = document.createElement('dl');
    dl.className = 'facts';
    dl.id = 'd-facts';
    const live = !row.gone;
    fact(dl, 'state', 'State', stateText(c) + (c.oom_killed ? ' · OOM killed' : '') + (crashing(row) ? ' · crash loop' : ''));
    if (num(c.started_at)) fact(dl, 'started', 'Started', when(c.started_at) + (live ? ' (up ' + ago(c.started_at) + ')' : ''), c.started_at);
    if (!live && num(c.finished_at)) fact(dl, 'finished', 'Ended', when(c.finished_at) + ' (' + ago(c.finished_at) + ' ago)', c.finished_at);
    if (!live && num(c.exit_code)) fact(dl, 'exit_code', 'Exit code', String(c.exit_code), c.exit_code);
    if (c.health) fact(dl, 'health', 'Health', c.health);
    if (live) {
      fact(dl, 'cpu', 'CPU, % of the host', percent(c.cpu_percent), c.cpu_percent);
      const n = cpusOf(row);
      if (num(c.cpu_percent) && num(n)) fact(dl, 'cpu_core', 'CPU, % of one core (docker stats)', percent(c.cpu_percent * n), c.cpu_percent * n);
      fact(dl, 'cpu_limit', 'CPU of its limit', num(c.cpu_percent_of_limit) ? percent(c.cpu_percent_of_limit) + ' of ' + c.cpu_limit_cores + ' CPUs' : 'no CPU limit', c.cpu_percent_of_limit);
      fact(dl, 'cpu_seconds', 'CPU time', num(c.cpu_seconds_total) ? c.cpu_seconds_total.toFixed(2) + ' s' : '–', c.cpu_seconds_total);
      fact(dl, 'mem', 'Memory (working set)', bytes(c.memory_working_set_bytes) + (num(c.memory_limit_bytes) && num(c.memory_working_set_bytes) ? ' of ' + bytes(c.memory_limit_bytes) + ' (' + percent((100 * c.memory_working_set_bytes) / c.memory_limit_bytes) + ')' : ''), c.memory_working_set_bytes);
      fact(dl, 'mem_limit', 'Memory limit', num(c.memory_limit_bytes) ? bytes(c.memory_limit_bytes) : 'none', c.memory_limit_bytes);
      fact(dl, 'mem_usage', 'Memory usage (with cache)', bytes(c.memory_usage_bytes), c.memory_usage_bytes);
      if (num(c.network_rx_bytes_total)) {
        fact(dl, 'rx', 'Network received', perSecond(row.rates.rx) + ' · ' + bytes(c.network_rx_bytes_total) + ' in all', c.network_rx_bytes_total);
        fact(dl, 'tx', 'Network sent', perSecond(row.rates.tx) + ' · ' + bytes(c.network_tx_bytes_total) + ' in all', c.network_tx_bytes_total);
      } else {
        fact(dl, 'rx', 'Network', 'not reported by the engine');
      }
      if (num(c.fs_read_bytes_total)) {
        fact(dl, 'read', 'Block read', perSecond(row.rates.read) + ' · ' + bytes(c.fs_read_bytes_total) + ' in all', c.fs_read_bytes_total);
        fact(dl, 'write', 'Block written', perSecond(row.rates.write) + ' · ' + bytes(c.fs_write_bytes_total) + ' in all', c.fs_write_bytes_total);
      } else {
        fact(dl, 'read', 'Block I/O', 'not reported by the engine');
      }
      fact(dl, 'pids', 'PIDs', num(c.pids) ? String(c.pids) : '–', c.pids);
    }
    fact(dl, 'restarts', 'Restarts', num(c.restarts) ? String(c.restarts) : '–', c.restarts);
    $('d-facts').replaceWith(dl);
    const h = history.get(key) || [];
    // How much history there is, for a reader (and the tests) to see.
    el.detail.dataset.points = String(h.length);
    el.detail.dataset.since = h.length ? String(h[0].t) : '';
    const n = cpusOf(row) || 1;
    const cpuOf = (p) => (num(p.cpu) ? (unit === 'core' ? p.cpu * n : p.cpu) : undefined);
    $('d-cpu-caption').textContent = 'CPU, % ' + cpuUnitText() + (c.cpu_limit_cores ? ' (dashed: its limit of ' + c.cpu_limit_cores + ' CPUs)' : '');
    const limitPct = num(c.cpu_limit_cores) && num(cpusOf(row)) ? (unit === 'core' ? c.cpu_limit_cores * 100 : (100 * c.cpu_limit_cores) / cpusOf(row)) : undefined;
    graph($('d-cpu'), [{ name: 'CPU', color: COLORS.cpu, points: h.map((p) => [p.t, cpuOf(p)]) }], { format: percent, limit: limitPct });
    graph($('d-mem'), [{ name: 'working set', color: COLORS.mem, points: h.map((p) => [p.t, p.mem]) }], { format: bytes, limit: c.memory_limit_bytes, binary: true });
    graph($('d-net'), [
      { name: 'received', color: COLORS.rx, points: h.map((p) => [p.t, p.rx]) },
      { name: 'sent', color: COLORS.tx, points: h.map((p) => [p.t, p.tx]) },
    ], { format: perSecond, binary: true });
    graph($('d-io'), [
      { name: 'read', color: COLORS.read, points: h.map((p) => [p.t, p.read]) },
      { name: 'written', color: COLORS.write, points: h.map((p) => [p.t, p.write]) },
    ], { format: perSecond, binary: true });
  }

  // ---- Routing, status, polling -----------------------------------------

  function route() {
    const m = /^#c=(.+)$/.exec(window.location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function render() {
    const key = route();
    el.list.hidden = key !== null;
    el.detail.hidden = key === null;
    if (key === null) {
      document.title = 'docker-stats-exporter';
      renderList();
    } else {
      renderDetail(key);
    }
  }

  function setStatus(state, text) {
    el.status.dataset.state = state;
    el.status.textContent = text;
    document.body.classList.toggle('stale', state === 'down');
  }

  function showOutcome() {
    const haveRows = rows.size > 0;
    const last = haveRows ? ' (showing the last values)' : '';
    if (!lastFailure) {
      setStatus('ok', 'live · updated ' + new Date().toLocaleTimeString() + ' · every ' + PERIOD_MS / 1000 + ' s while visible');
    } else if (lastFailure.kind === 'query') {
      setStatus('query', "This page's address is not a valid query: " + lastFailure.text + '. Fix the address; without a query the page shows every selected container.');
    } else if (lastFailure.kind === 'exporter') {
      setStatus('down', 'exporter not answering: ' + lastFailure.text + last);
    } else {
      setStatus('down', lastFailure.text + last);
    }
  }

  function api() {
    const params = new URLSearchParams(window.location.search);
    if (el.stopped.checked) params.set('stopped', 'true');
    const s = params.toString();
    return '/api/containers' + (s ? '?' + s : '');
  }

  async function poll() {
    timer = null;
    if (document.visibilityState === 'hidden' || inFlight) return;
    inFlight = true;
    const started = Date.now();
    try {
      let answer = null;
      let res = null;
      try {
        res = await fetch(api(), { cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'application/json' } });
        try {
          answer = await res.json();
        } catch (e) {
          answer = null;
        }
      } catch (e) {
        lastFailure = { kind: 'exporter', text: 'no connection' };
      }
      if (res) {
        if (res.ok) lastFailure = null;
        else if (res.status === 400) lastFailure = { kind: 'query', text: (answer && answer.error) || 'HTTP 400' };
        else if (res.status === 503 && answer) lastFailure = { kind: 'engine', text: answer.error || 'engine not answering' };
        else lastFailure = { kind: 'exporter', text: (answer && answer.error) || 'HTTP ' + res.status };
      }
      answers++;
      document.body.dataset.answers = String(answers);
      if (answer && Array.isArray(answer.containers) && Array.isArray(answer.engines)) {
        const vanished = ingest(answer);
        if (vanished.length) await lookUp(vanished);
        save();
      } else if (lastFailure) {
        for (const row of rows.values()) row.stale = true;
      }
      showOutcome();
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

  function sortBy(key, textual) {
    if (key === sortKey) sortDir = -sortDir;
    else {
      sortKey = key;
      // Text ascending, numbers highest first.
      sortDir = textual ? 1 : -1;
    }
    el.sort.value = sortKey;
    setPref('sort', sortKey);
    setPref('sort-dir', String(sortDir));
    render();
  }
  for (const th of el.table.querySelectorAll('th[data-key]')) {
    th.querySelector('button').addEventListener('click', () => sortBy(th.dataset.key, th.dataset.type === 'text'));
  }
  el.sort.addEventListener('change', () => {
    sortKey = el.sort.value;
    sortDir = ['name', 'image', 'state'].includes(sortKey) ? 1 : -1;
    setPref('sort', sortKey);
    setPref('sort-dir', String(sortDir));
    render();
  });
  el.filter.addEventListener('input', render);
  el.stateFilter.addEventListener('change', render);
  el.group.addEventListener('change', () => {
    setPref('group', String(el.group.checked));
    render();
  });
  el.unit.addEventListener('change', () => {
    unit = el.unit.value === 'core' ? 'core' : 'host';
    setPref('cpu-unit', unit);
    render();
  });
  el.stopped.addEventListener('change', () => {
    setPref('show-stopped', String(el.stopped.checked));
    schedule(0);
  });
  el.dismissAll.addEventListener('click', () => {
    for (const r of rows.values()) if (r.gone && r.kept) dismissed.add(r.key);
    save();
    render();
  });
  $('back').addEventListener('click', (ev) => {
    ev.preventDefault();
    showList();
  });
  $('home').addEventListener('click', (ev) => {
    ev.preventDefault();
    showList();
  });
  // Back to the list, keeping the query (the narrowing) of the address.
  function showList() {
    window.location.hash = '';
  }
  window.addEventListener('hashchange', () => {
    render();
    window.scrollTo(0, 0);
  });
  window.addEventListener('resize', () => {
    for (const c of document.querySelectorAll('.graph canvas')) draw(c);
  });

  restore();
  render();
  poll();
})();
