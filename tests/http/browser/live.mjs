// Drives the live view in Debian's chromium for tests/http/live_browser.rs.
//
// The Rust test starts the exporter (and containers) and runs
// `node live.mjs SCENARIO` with DSE_URL set. Where the test must act (start a
// container, stop the engine), this script prints `STEP name {json}` on
// stdout and waits for one line on stdin: the test's JSON reply. It ends with
// `DONE {json}`, or `FAIL message` and exit code 1. Every wait is on a
// condition in the page, with a deadline.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const url = process.env.DSE_URL;
const scenario = process.argv[2];
const deadline = Number(process.env.DSE_WAIT_MS || 30000);
const replies = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function step(name, data = {}) {
  process.stdout.write(`STEP ${name} ${JSON.stringify(data)}\n`);
  const { value, done } = await replies.next();
  if (done) throw new Error(`no reply to step ${name}`);
  return JSON.parse(value);
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.DSE_CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
    // playwright gives every launch a fresh --user-data-dir of its own, in
    // TMPDIR (a directory of the test's).
  });
}

/// A page with every dialog, console error and API answer recorded.
async function open(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 }, ...options });
  const page = await context.newPage();
  const seen = { dialogs: [], errors: [], answers: [], apiRequests: 0 };
  page.on('dialog', async (d) => {
    seen.dialogs.push(d.message());
    await d.dismiss();
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('console', (m) => {
    // A 503 of /api/containers is the engine being down and a 400 a bad
    // query, both of which the page shows. ERR_NETWORK_CHANGED is Chromium
    // dropping requests in flight when an interface comes or goes (the
    // engine adds a veth per container started by tests running beside);
    // the page asks again at its next refresh.
    if (m.type() === 'error' && !/status of (503|400)|net::ERR_NETWORK_CHANGED/.test(m.text())) seen.errors.push(m.text());
  });
  page.on('request', (r) => {
    if (r.url().includes('/api/containers')) seen.apiRequests++;
  });
  page.on('response', async (r) => {
    if (!r.url().includes('/api/containers')) return;
    try {
      const body = await r.body();
      seen.answers.push({ status: r.status(), bytes: body.length, json: JSON.parse(body.toString('utf8')) });
    } catch (e) {
      // a failed fetch has no body
    }
  });
  return { context, page, seen };
}

const rowNames = (page) => page.$$eval('#containers tbody tr.row', (trs) => trs.map((tr) => tr.dataset.name));

async function waitRows(page, want, what) {
  await page.waitForFunction(
    (want) => {
      const names = Array.from(document.querySelectorAll('#containers tbody tr.row')).map((tr) => tr.dataset.name);
      return want.present.every((n) => names.includes(n)) && want.absent.every((n) => !names.includes(n));
    },
    want,
    { timeout: deadline },
  ).catch(async (e) => {
    throw new Error(`${what}: rows ${JSON.stringify(await rowNames(page))}; ${e.message}`);
  });
}

async function waitState(page, state, minAnswers = 0) {
  await page.waitForFunction(
    ({ state, minAnswers }) =>
      document.getElementById('status').dataset.state === state &&
      Number(document.body.dataset.answers || 0) >= minAnswers,
    { state, minAnswers },
    { timeout: deadline },
  ).catch(async (e) => {
    const text = await page.textContent('#status');
    throw new Error(`waiting for state ${state}: status is ${JSON.stringify(text)}; ${e.message}`);
  });
}

/// The row of `name` once it has class `mark` (`gone`: greyed as stopped;
/// `crash`: in a crash loop), as shown.
async function waitMarked(page, name, mark) {
  await page.waitForFunction(
    ({ name, mark }) => {
      const tr = document.querySelector(`#containers tr.row[data-name="${name}"]`);
      return tr && tr.classList.contains(mark);
    },
    { name, mark },
    { timeout: deadline },
  ).catch(async (e) => {
    throw new Error(`${name} marked ${mark}: rows ${JSON.stringify(await shown(page))}; ${e.message}`);
  });
  return (await shown(page)).find((r) => r.name === name);
}

/// The rows as shown: name, values as the cells hold them, and whether
/// the row is greyed (stale: its engine is down; gone: stopped).
async function shown(page) {
  return page.$$eval('#containers tbody tr.row', (trs) =>
    trs.map((tr) => ({
      name: tr.dataset.name,
      key: tr.dataset.key,
      stale: tr.classList.contains('stale'),
      gone: tr.classList.contains('gone'),
      mem: Number(tr.querySelector('td.mem').dataset.bytes),
      cpu: tr.querySelector('td.cpu').dataset.value === undefined ? null : Number(tr.querySelector('td.cpu').dataset.value),
      restarts: tr.querySelector('td.restarts').textContent,
      image: tr.querySelector('td.image').textContent,
      state: tr.querySelector('td.state').textContent,
      exitCode: tr.querySelector('td.state').dataset.exitCode,
      service: (tr.querySelector('td.name .sub') || {}).textContent || '',
      net: tr.querySelector('td.net').textContent,
      io: tr.querySelector('td.io').textContent,
      pids: tr.querySelector('td.pids').textContent,
    })),
  );
}

/// Nothing wider than the window: no horizontal scroll.
async function noOverflow(page, what) {
  const m = await page.evaluate(() => ({
    scroll: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    inner: window.innerWidth,
  }));
  check(m.scroll <= m.inner, `${what}: scrollWidth ${m.scroll} > innerWidth ${m.inner}`);
  return m;
}

/// Every row's name is on screen, within the window's width.
async function namesVisible(page, what) {
  const boxes = await page.$$eval('#containers tbody tr.row td.name a', (as) =>
    as.map((a) => {
      const r = a.getBoundingClientRect();
      return { name: a.textContent, left: r.left, right: r.right, width: r.width };
    }),
  );
  const inner = await page.evaluate(() => window.innerWidth);
  for (const b of boxes) {
    check(b.width > 20 && b.left >= 0 && b.left < inner - 20, `${what}: the name ${b.name} is not visible: ${JSON.stringify(b)}`);
  }
  return boxes.length;
}

/// The status line, once the page has had `minAnswers` answers.
async function statusText(page) {
  return page.textContent('#status');
}

/// `name` in one of the last answers, the one the page may have drawn
/// (an answer can land between reading the page and reading the list).
function answered(seen, name, drawn) {
  const recent = seen.answers.slice(-3).reverse().map((a) => a.json.containers.find((c) => c.name === name)).filter(Boolean);
  return recent.find(drawn) || recent[0];
}

const near = (a, b) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b));

/// The totals equal the sum of the rows shown that run.
async function totalsMatchRows(page, what) {
  const t = await page.evaluate(() => {
    const all = Array.from(document.querySelectorAll('#containers tbody tr.row'));
    const rows = all.filter((tr) => !tr.classList.contains('gone') && !tr.classList.contains('stale'));
    const sum = (f) => rows.reduce((s, tr) => s + f(tr), 0);
    return {
      all: all.length,
      rows: rows.length,
      cpu: sum((tr) => Number(tr.querySelector('td.cpu').dataset.value || 0)),
      mem: sum((tr) => Number(tr.querySelector('td.mem').dataset.bytes || 0)),
      totalCpu: Number(document.getElementById('total-cpu').dataset.value),
      totalMem: Number(document.getElementById('total-mem').dataset.value),
      count: document.getElementById('count').textContent,
    };
  });
  check(near(t.cpu, t.totalCpu), `${what}: total CPU ${t.totalCpu}, rows add to ${t.cpu}`);
  check(near(t.mem, t.totalMem), `${what}: total memory ${t.totalMem}, rows add to ${t.mem}`);
  check(t.count.startsWith(`${t.all} of `), `${what}: count ${t.count} for ${t.all} rows`);
  return t;
}

async function main() {
  const browser = await launch();
  try {
    const result = await scenarios[scenario](browser);
    process.stdout.write(`DONE ${JSON.stringify(result || {})}\n`);
  } finally {
    await browser.close();
  }
}

const scenarios = {
  /// The real engine through the test's pass-through, at a laptop's
  /// 1280×800: values, sorting, filters and the totals that follow them,
  /// the CPU unit, a container's page and its history across a reload, a
  /// stopped container's exit code, a phone's 390×844, containers coming
  /// and going, the engine going away and back, a hidden page that stops
  /// asking.
  async live(browser) {
    const names = JSON.parse(process.env.DSE_NAMES);
    const screenshot = process.env.DSE_SCREENSHOT;
    const { page, seen } = await open(browser, { viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    // Survives only if the page is never reloaded (until the reload below).
    const mark = () => page.evaluate(() => {
      window.dseMarker = 'same page';
    });
    await mark();
    // Two answers: rates need a pair.
    await waitState(page, 'ok', 2);
    await waitRows(page, { present: names, absent: [] }, 'the test containers');
    let rows = await shown(page);
    const answer = seen.answers[seen.answers.length - 1];
    for (const r of rows) {
      const c = answered(seen, r.name, (c) => c.memory_working_set_bytes === r.mem);
      check(c, `${r.name} is not in the last answer`);
      check(r.mem === c.memory_working_set_bytes, `${r.name}: shown ${r.mem}, answered ${c.memory_working_set_bytes}`);
      check(r.restarts === String(c.restarts), `${r.name}: restarts ${r.restarts}`);
      check(r.image === c.image, `${r.name}: image ${r.image}`);
      check(r.cpu === (typeof c.cpu_percent === 'number' ? c.cpu_percent : null), `${r.name}: CPU ${r.cpu}, answered ${c.cpu_percent}`);
    }
    await step('compare', { rows, answer: answer.json });
    await noOverflow(page, '1280×800');
    await namesVisible(page, '1280×800');

    // Sorting: by name both ways, then by memory (highest first).
    const sortedBy = async (key) => {
      await page.click(`th[data-key="${key}"] button`);
      return page.$eval(`th[data-key="${key}"]`, (th) => th.getAttribute('aria-sort'));
    };
    await page.uncheck('#group-projects');
    check((await sortedBy('name')) === 'descending', 'name sort did not turn descending');
    let order = await rowNames(page);
    check(JSON.stringify(order) === JSON.stringify([...order].sort().reverse()), `descending by name: ${order}`);
    check((await sortedBy('name')) === 'ascending', 'name sort did not turn ascending');
    order = await rowNames(page);
    check(JSON.stringify(order) === JSON.stringify([...order].sort()), `ascending by name: ${order}`);
    check((await sortedBy('mem')) === 'descending', 'memory sorts highest first');
    const mems = (await shown(page)).map((r) => r.mem);
    check(mems.every((m, i) => i === 0 || mems[i - 1] >= m), `descending by memory: ${mems}`);
    await sortedBy('name');
    await page.check('#group-projects');

    // Filters: name, Compose project, state; the totals follow each.
    const project = process.env.DSE_PROJECT;
    const inProject = JSON.parse(process.env.DSE_IN_PROJECT);
    await totalsMatchRows(page, 'no filter');
    await page.fill('#filter', names[0]);
    await waitRows(page, { present: [names[0]], absent: names.slice(1) }, 'filter by name');
    await totalsMatchRows(page, 'filtered by name');
    await page.fill('#filter', project);
    await waitRows(page, { present: inProject, absent: names.filter((n) => !inProject.includes(n)) }, 'filter by project');
    const t = await totalsMatchRows(page, 'filtered by project');
    check(t.rows === inProject.length, `${t.rows} rows in the project`);
    // The project is a group with its own totals, which fold away.
    const head = `#containers tr.group-head[data-project="${project}"]`;
    const groupMem = Number(await page.$eval(`${head} .gtotals`, (s) => s.dataset.mem));
    check(near(groupMem, t.mem), `group memory ${groupMem}, rows ${t.mem}`);
    await page.click(`${head} button`);
    await waitRows(page, { present: [], absent: inProject }, 'the folded project');
    check((await page.$eval(`${head} button`, (b) => b.getAttribute('aria-expanded'))) === 'false', 'aria-expanded after folding');
    await page.click(`${head} button`);
    await waitRows(page, { present: inProject, absent: [] }, 'the unfolded project');
    await page.fill('#filter', '');
    await page.selectOption('#state-filter', 'stopped');
    await waitRows(page, { present: [], absent: names }, 'state filter: stopped');
    await page.selectOption('#state-filter', 'running');
    await waitRows(page, { present: names, absent: [] }, 'state filter: running');
    await page.selectOption('#state-filter', '');

    // Rates appear once two answers are in.
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#containers tbody td.net')).some((td) => /\/s/.test(td.textContent)), null, { timeout: deadline });
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, '-1280.png'), fullPage: true });

    // docker stats' unit: the percent of one core, remembered.
    const cpus = answer.json.engines[0].cpus;
    await page.selectOption('#cpu-unit', 'core');
    await page.waitForFunction(() => document.getElementById('cpu-head').textContent === 'core', null, { timeout: deadline });
    rows = await shown(page);
    for (const r of rows) {
      const c = answered(seen, r.name, (c) => near(r.cpu, c.cpu_percent * cpus));
      if (!c || typeof c.cpu_percent !== 'number') continue;
      check(near(r.cpu, c.cpu_percent * cpus), `${r.name}: per core ${r.cpu}, host ${c.cpu_percent} × ${cpus}`);
    }

    // A container's page: its own address, values, graphs with values on
    // hover, and its history kept across a reload of the tab.
    await page.click(`#containers tr.row[data-name="${names[0]}"] td.name a`);
    await page.waitForFunction(() => !document.getElementById('detail-view').hidden, null, { timeout: deadline });
    check(/#c=/.test(page.url()), `the container's address: ${page.url()}`);
    const before = Number(await page.evaluate(() => document.body.dataset.answers));
    await page.waitForFunction((n) => Number(document.body.dataset.answers) >= n + 2, before, { timeout: deadline });
    const facts = await page.$$eval('#d-facts [data-fact]', (divs) =>
      Object.fromEntries(divs.map((d) => [d.dataset.fact, { text: d.querySelector('dd').textContent, value: d.querySelector('dd').dataset.value }])),
    );
    const last = answered(seen, names[0], (c) => c.memory_working_set_bytes === Number(facts.mem.value));
    check(Number(facts.mem.value) === last.memory_working_set_bytes, `page memory ${facts.mem.value}, answered ${last.memory_working_set_bytes}`);
    check(near(Number(facts.cpu_core.value), last.cpu_percent * cpus), `per core ${facts.cpu_core.value}, answered ${last.cpu_percent} × ${cpus}`);
    await step('detail', { name: names[0], facts, answer: last });
    await page.focus('#d-mem');
    await page.keyboard.press('ArrowLeft');
    const tip = await page.$eval('#d-mem + .tip', (d) => d.textContent);
    check(/working set: .*B/.test(tip), `the memory graph's value on a key press: ${JSON.stringify(tip)}`);
    await page.hover('#d-cpu');
    const cpuTip = await page.$eval('#d-cpu + .tip', (d) => d.textContent);
    check(/CPU: .*%/.test(cpuTip), `the CPU graph's value on hover: ${JSON.stringify(cpuTip)}`);
    const kept = await page.evaluate(() => ({ points: Number(document.getElementById('detail-view').dataset.points), since: document.getElementById('detail-view').dataset.since }));
    check(kept.points >= 3, `history points before the reload: ${kept.points}`);
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, '-container.png'), fullPage: true });
    await page.reload();
    await page.waitForFunction(() => !document.getElementById('detail-view').hidden, null, { timeout: deadline });
    const after = await page.evaluate(() => ({ points: Number(document.getElementById('detail-view').dataset.points), since: document.getElementById('detail-view').dataset.since, answers: Number(document.body.dataset.answers || 0) }));
    check(after.since === kept.since && after.points >= kept.points, `history after the reload: ${JSON.stringify(after)}, before ${JSON.stringify(kept)}`);
    check((await page.$eval('#cpu-unit', (s) => s.value)) === 'core', 'the CPU unit was not remembered');
    await page.selectOption('#cpu-unit', 'host');
    await page.click('#back');
    await page.waitForFunction(() => !document.getElementById('list-view').hidden, null, { timeout: deadline });
    await waitState(page, 'ok', 1);
    await mark();

    // A container that stops: greyed, with its exit code and when, until
    // dismissed.
    const { stopped, exit_code: exitCode } = await step('stop');
    const gone = await waitMarked(page, stopped, 'gone');
    check(gone.exitCode === String(exitCode), `${stopped}: exit code shown ${gone.exitCode}, engine ${exitCode}`);
    check(gone.state.includes(`(${exitCode})`) && /ago/.test(gone.state), `${stopped}: state ${gone.state}`);
    await totalsMatchRows(page, 'with a stopped row');
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, '-stopped.png'), fullPage: true });
    await page.click(`#containers tr.row[data-name="${stopped}"] button.dismiss`);
    await waitRows(page, { present: [], absent: [stopped] }, 'the dismissed container');

    // A phone: cards, the name on each, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await noOverflow(page, '390×844');
    const cards = await namesVisible(page, '390×844');
    check(cards >= names.length - 1, `${cards} cards at 390×844`);
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, '-390.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    // A container started while the page is open appears; a removed one goes.
    const { added } = await step('add');
    await waitRows(page, { present: [added], absent: [] }, 'the added container');
    const { removed } = await step('remove');
    await waitRows(page, { present: [added], absent: [removed] }, 'the removed container');

    // The engine goes away: the page says why, as /readyz does, and keeps
    // the last values, greyed.
    const before2 = await rowNames(page);
    const { readyz } = await step('engine-down');
    await waitState(page, 'down');
    const status = await statusText(page);
    check(/engine .* not answering/.test(status), `status while down: ${status}`);
    check(status.includes(readyz), `status while down: ${status}; /readyz: ${readyz}`);
    check(/showing the last values/.test(status), `status while down: ${status}`);
    const stale = await shown(page);
    check(stale.length === before2.length && stale.every((r) => r.stale), `rows while down: ${JSON.stringify(stale)}`);
    const totalMem = await page.textContent('#total-mem');
    check(totalMem !== '0 B', `total memory while down: ${totalMem}`);
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, '-down.png'), fullPage: true });
    // And back, without a reload.
    await step('engine-up');
    await waitState(page, 'ok');
    await page.waitForFunction(() => document.querySelectorAll('#containers tbody tr.stale').length === 0, null, { timeout: deadline });
    check((await page.evaluate(() => window.dseMarker)) === 'same page', 'the page was reloaded');

    // Hidden: no more requests. Visible again: asks at once.
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    const hiddenAt = seen.apiRequests;
    await step('hidden');
    check(seen.apiRequests <= hiddenAt + 1, `a hidden page asked ${seen.apiRequests - hiddenAt} times`);
    const answersBefore = await page.evaluate(() => Number(document.body.dataset.answers));
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await page.waitForFunction((n) => Number(document.body.dataset.answers) > n, answersBefore, { timeout: deadline });
    // One container's Compose service is an <img onerror> tag: text only.
    check((await page.$$('img')).length === 0, 'an <img> element was created from a label');
    check(seen.dialogs.length === 0, `dialogs: ${seen.dialogs}`);
    check(seen.errors.length === 0, `page errors: ${seen.errors}`);
    return { answers: seen.answers.length };
  },

  /// The whole engine, not narrowed: a container that stops leaves the
  /// running list, and the page asks for it by name to show how it ended.
  async vanish(browser) {
    const name = process.env.DSE_NAME;
    const { page, seen } = await open(browser, { viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    await page.fill('#filter', name);
    await waitState(page, 'ok', 1);
    await waitRows(page, { present: [name], absent: [] }, 'the container');
    const { exit_code: exitCode } = await step('stop');
    const row = await waitMarked(page, name, 'gone');
    check(row.exitCode === String(exitCode), `exit code shown ${row.exitCode}, engine ${exitCode}`);
    // Still there answers later, until dismissed.
    const n = await page.evaluate(() => Number(document.body.dataset.answers));
    await page.waitForFunction((n) => Number(document.body.dataset.answers) >= n + 2, n, { timeout: deadline });
    await waitRows(page, { present: [name], absent: [] }, 'the stopped container, answers later');
    await page.click('#dismiss-all');
    await waitRows(page, { present: [], absent: [name] }, 'dismissed');
    check(seen.errors.length === 0, `page errors: ${seen.errors}`);
    return { exitCode };
  },

  /// What is wrong, where: a typo in the address is the user's to fix; an
  /// engine that cannot be reached is named with /readyz's cause; "the last
  /// values" only when there are some.
  async errors(browser) {
    const { page, seen } = await open(browser, { viewport: { width: 1280, height: 800 } });
    const typo = new URL('/?nmae=x', url).href;
    await page.goto(typo);
    await waitState(page, 'query', 1);
    let status = await statusText(page);
    check(status.includes('unknown query parameter "nmae"'), `a typo: ${status}`);
    check(!/not answering|last values/.test(status), `a typo: ${status}`);
    await noOverflow(page, 'a typo');
    await page.goto(url);
    await waitState(page, 'down', 1);
    status = await statusText(page);
    check(status.includes(process.env.DSE_READYZ), `no socket: ${status}; /readyz: ${process.env.DSE_READYZ}`);
    check(!/last values/.test(status), `no socket, nothing shown before: ${status}`);
    check(seen.errors.length === 0, `page errors: ${seen.errors}`);
    return { status };
  },

  /// 70 containers with long names and Compose projects: no horizontal
  /// scroll at 1280×800 nor at 390×844, every name on screen.
  async layout(browser) {
    const count = Number(process.env.DSE_COUNT);
    const screenshot = process.env.DSE_SCREENSHOT;
    const { page, seen } = await open(browser, { viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    await waitState(page, 'ok', 2);
    await page.waitForFunction((n) => document.querySelectorAll('#containers tbody tr.row').length >= n, count, { timeout: deadline });
    const wide = await noOverflow(page, '1280×800');
    check((await namesVisible(page, '1280×800')) === count, 'names at 1280×800');
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, '-1280.png') });
    await totalsMatchRows(page, '70 containers');
    await page.setViewportSize({ width: 390, height: 844 });
    const narrow = await noOverflow(page, '390×844');
    check((await namesVisible(page, '390×844')) === count, 'names at 390×844');
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, '-390.png') });
    check(seen.errors.length === 0, `page errors: ${seen.errors}`);
    return { wide, narrow };
  },

  /// A container the engine restarts while the page is open is marked as
  /// a crash loop; before that it is not.
  async crash(browser) {
    const name = process.env.DSE_NAME;
    const { page, seen } = await open(browser);
    await page.goto(url);
    await waitState(page, 'ok', 2);
    await waitRows(page, { present: [name], absent: [] }, 'the container');
    const marked = () => page.$eval(`#containers tr.row[data-name="${name}"]`, (tr) => tr.classList.contains('crash'));
    check(!(await marked()), 'marked before any restart');
    await step('restart');
    await waitMarked(page, name, 'crash');
    const badge = await page.$eval(`#containers tr.row[data-name="${name}"] td.state .badge`, (b) => b.textContent);
    check(badge === 'crash loop', `badge: ${badge}`);
    const title = await page.$eval(`#containers tr.row[data-name="${name}"] td.restarts`, (td) => td.title);
    check(title === '+1 since this page opened', `restarts: ${title}`);
    check(seen.errors.length === 0, `page errors: ${seen.errors}`);
    return { ok: true };
  },

  /// The switch that lists every stopped container the engine has,
  /// remembered across a reload.
  async stopped(browser) {
    const running = process.env.DSE_RUNNING;
    const exited = process.env.DSE_EXITED;
    const { page, seen } = await open(browser);
    await page.goto(url);
    await waitState(page, 'ok', 1);
    await waitRows(page, { present: [running], absent: [exited] }, 'switch off');
    await page.check('#show-stopped');
    await waitRows(page, { present: [running, exited], absent: [] }, 'switch on');
    const row = (await shown(page)).find((r) => r.name === exited);
    check(row.gone && /^exited/.test(row.state), `the exited container: ${JSON.stringify(row)}`);
    const asked = seen.answers[seen.answers.length - 1];
    check(asked.json.containers.some((c) => c.name === exited), 'the answer has the exited container');
    await page.reload();
    await waitState(page, 'ok', 1);
    check(await page.isChecked('#show-stopped'), 'the switch was not remembered');
    await waitRows(page, { present: [running, exited], absent: [] }, 'switch on after a reload');
    await page.uncheck('#show-stopped');
    await waitRows(page, { present: [running], absent: [exited] }, 'switch off again');
    check(seen.errors.length === 0, `page errors: ${seen.errors}`);
    return { ok: true };
  },

  /// The page left open (for tests/http/live_cost.rs): once it shows
  /// DSE_COUNT rows, says `open` and counts its requests until the reply.
  async watch(browser) {
    const { page, seen } = await open(browser);
    await page.goto(url);
    await waitState(page, 'ok', 2);
    await page.waitForFunction((n) => document.querySelectorAll('#containers tbody tr.row').length >= n, Number(process.env.DSE_COUNT), { timeout: deadline });
    const from = seen.apiRequests;
    const start = Date.now();
    await step('open');
    const requests = seen.apiRequests - from;
    const seconds = (Date.now() - start) / 1000;
    const last = seen.answers[seen.answers.length - 1];
    check(seen.errors.length === 0, `page errors: ${seen.errors}`);
    return { requests, seconds, bytes: last ? last.bytes : 0 };
  },

  /// A screenshot once the page has DSE_ANSWERS answers of history (for
  /// docs/live-view.png): `DSE_URL=http://127.0.0.1:8091/ DSE_ANSWERS=24
  /// DSE_SCREENSHOT=docs/live-view.png node tests/http/browser/live.mjs shot`.
  async shot(browser) {
    const { page } = await open(browser);
    await page.goto(url);
    const answers = Number(process.env.DSE_ANSWERS || 2);
    await page.waitForFunction((n) => Number(document.body.dataset.answers || 0) >= n, answers, { timeout: (answers + 4) * 6000 });
    await page.screenshot({ path: process.env.DSE_SCREENSHOT, fullPage: true });
    return { answers };
  },

  /// A hostile container name and labels are shown as text and run nothing.
  async hostile(browser) {
    const hostile = process.env.DSE_HOSTILE;
    const { page, seen } = await open(browser);
    await page.goto(url);
    await waitState(page, 'ok', 1);
    await waitRows(page, { present: [hostile], absent: [] }, 'the hostile container');
    const rows = await shown(page);
    const row = rows.find((r) => r.name === hostile);
    check(row.service.includes('<script>'), `service: ${row.service}`);
    const projects = await page.$$eval('#containers tr.group-head', (trs) => trs.map((tr) => tr.dataset.project));
    check(projects.includes(process.env.DSE_HOSTILE_PROJECT), `groups: ${JSON.stringify(projects)}`);
    const nameCell = await page.$eval(`#containers tbody tr.row[data-key="${row.key.replace(/"/g, '\\"')}"] td.name a`, (a) => a.textContent);
    check(nameCell === hostile, `name cell: ${nameCell}`);
    check((await page.$$('img')).length === 0, 'an <img> element was created');
    check((await page.$$('#containers script, #containers svg, #containers iframe')).length === 0, 'markup from data');
    // Give an onerror handler every chance: a full polling period.
    await page.waitForFunction((n) => Number(document.body.dataset.answers) > n, 1, { timeout: deadline });
    check(seen.dialogs.length === 0, `a dialog fired: ${seen.dialogs}`);
    check((await page.evaluate(() => window.dsePwned)) === undefined, 'a script ran');
    check(seen.errors.length === 0, `page errors: ${seen.errors}`);
    return { ok: true };
  },

  /// Behind basic auth: nothing without the credentials, the page and its
  /// requests with them.
  async auth(browser) {
    // Chromium either shows the 401 or, having no credentials to offer,
    // stops the navigation with ERR_INVALID_AUTH_CREDENTIALS: no view either way.
    const refused = async (options, what) => {
      const { context, page } = await open(browser, options);
      const status = await page.goto(url).then(
        (res) => res.status(),
        (e) => {
          check(/ERR_INVALID_AUTH_CREDENTIALS/.test(e.message), `${what}: ${e.message}`);
          return 401;
        },
      );
      check(status === 401, `${what}: ${status}`);
      // A refused navigation may still be turning into Chromium's error
      // page: ask again once that has loaded.
      let shownView = null;
      for (let i = 0; i < 20 && shownView === null; i++) {
        try {
          await page.waitForLoadState('load');
          shownView = await page.evaluate(() => !!document.getElementById('containers'));
        } catch (e) {
          if (!/context was destroyed|navigat/i.test(e.message)) throw e;
        }
      }
      check(shownView === false, `${what}: the view was shown (${shownView})`);
      const api = await context.request.get(new URL('/api/containers', url).href);
      check(api.status() === 401, `${what}: /api/containers answered ${api.status()}`);
      await context.close();
    };
    await refused({}, 'without credentials');
    await refused({ httpCredentials: { username: process.env.DSE_USER, password: 'wrong' } }, 'with a wrong password');
    const user = await open(browser, {
      httpCredentials: { username: process.env.DSE_USER, password: process.env.DSE_PASSWORD },
    });
    const res3 = await user.page.goto(url);
    const page = await user.context.request.get(new URL('/live.js', url).href);
    check(page.status() === 200, `/live.js with credentials: ${page.status()}`);
    check(res3.status() === 200, `with credentials: ${res3.status()}`);
    await waitState(user.page, 'ok', 1);
    check(user.seen.answers.every((a) => a.status === 200), `api answers: ${JSON.stringify(user.seen.answers.map((a) => a.status))}`);
    return { ok: true };
  },
};

main().then(
  () => process.exit(0),
  (e) => {
    process.stdout.write(`FAIL ${String(e && e.stack ? e.stack : e).replace(/\n/g, ' | ')}\n`);
    process.exit(1);
  },
);
