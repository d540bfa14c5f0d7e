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
    // A 503 of /api/containers is the engine being down, which the page shows.
    if (m.type() === 'error' && !/status of 503/.test(m.text())) seen.errors.push(m.text());
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

const rowNames = (page) => page.$$eval('#containers tbody tr', (trs) => trs.map((tr) => tr.dataset.name));

async function waitRows(page, want, what) {
  await page.waitForFunction(
    (want) => {
      const names = Array.from(document.querySelectorAll('#containers tbody tr')).map((tr) => tr.dataset.name);
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

/// The rows as shown: name, memory bytes, restarts, image, and the JSON
/// answer the page rendered them from.
async function shown(page) {
  return page.$$eval('#containers tbody tr', (trs) =>
    trs.map((tr) => ({
      name: tr.dataset.name,
      stale: tr.classList.contains('stale'),
      mem: Number(tr.querySelector('td.mem').dataset.bytes),
      restarts: tr.querySelector('td.restarts').textContent,
      image: tr.querySelector('td.image').textContent,
      compose: tr.querySelector('td.compose').textContent,
      cpu: tr.querySelector('td.cpu').textContent,
      rx: tr.querySelector('td.rx').textContent,
      read: tr.querySelector('td.read').textContent,
    })),
  );
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
  /// The real engine through the test's pass-through: values, sorting,
  /// filtering, containers coming and going, the engine going away and
  /// back, a hidden page that stops asking.
  async live(browser) {
    const names = JSON.parse(process.env.DSE_NAMES);
    const { page, seen } = await open(browser);
    await page.goto(url);
    // Survives only if the page is never reloaded.
    await page.evaluate(() => {
      window.dseMarker = 'same page';
    });
    // Two answers: rates need a pair.
    await waitState(page, 'ok', 2);
    await waitRows(page, { present: names, absent: [] }, 'the test containers');
    const rows = await shown(page);
    const answer = seen.answers[seen.answers.length - 1];
    for (const r of rows) {
      const c = answer.json.containers.find((c) => c.name === r.name);
      check(c, `${r.name} is not in the last answer`);
      check(r.mem === c.memory_working_set_bytes, `${r.name}: shown ${r.mem}, answered ${c.memory_working_set_bytes}`);
      check(r.restarts === String(c.restarts), `${r.name}: restarts ${r.restarts}`);
      check(r.image === c.image, `${r.name}: image ${r.image}`);
    }
    await step('compare', { rows, answer: answer.json });

    // Sorting: by name both ways, then by memory (highest first).
    const sortedBy = async (key) => {
      await page.click(`th[data-key="${key}"]`);
      return page.$eval(`th[data-key="${key}"]`, (th) => th.getAttribute('aria-sort'));
    };
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

    // Filtering by name, then by Compose project.
    await page.fill('#filter', names[0]);
    await waitRows(page, { present: [names[0]], absent: names.slice(1) }, 'filter by name');
    await page.fill('#filter', process.env.DSE_PROJECT);
    const inProject = JSON.parse(process.env.DSE_IN_PROJECT);
    await waitRows(page, { present: inProject, absent: names.filter((n) => !inProject.includes(n)) }, 'filter by project');
    await page.fill('#filter', '');
    await waitRows(page, { present: names, absent: [] }, 'filter cleared');

    // Rates appear once two answers are in.
    await page.waitForFunction(() => !!document.querySelector('#containers tbody td.rx') &&
      Array.from(document.querySelectorAll('#containers tbody td.rx')).some((td) => /\/s$/.test(td.textContent)), null, { timeout: deadline });
    const screenshot = process.env.DSE_SCREENSHOT;
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

    // A container started while the page is open appears; a removed one goes.
    const { added } = await step('add');
    await waitRows(page, { present: [added], absent: [] }, 'the added container');
    const { removed } = await step('remove');
    await waitRows(page, { present: [added], absent: [removed] }, 'the removed container');

    // The engine goes away: the page says so and keeps the last values, greyed.
    const before = await rowNames(page);
    await step('engine-down');
    await waitState(page, 'down');
    const status = await page.textContent('#status');
    check(/engine .* not answering/.test(status), `status while down: ${status}`);
    const stale = await shown(page);
    check(stale.length === before.length && stale.every((r) => r.stale), `rows while down: ${JSON.stringify(stale)}`);
    const totalMem = await page.textContent('#total-mem');
    check(totalMem !== '0 B' && totalMem !== '–', `total memory while down: ${totalMem}`);
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

  /// The page left open (for tests/http/live_cost.rs): once it shows
  /// DSE_COUNT rows, says `open` and counts its requests until the reply.
  async watch(browser) {
    const { page, seen } = await open(browser);
    await page.goto(url);
    await waitState(page, 'ok', 2);
    await page.waitForFunction((n) => document.querySelectorAll('#containers tbody tr').length >= n, Number(process.env.DSE_COUNT), { timeout: deadline });
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
    check(row.compose.startsWith(process.env.DSE_HOSTILE_PROJECT), `compose cell: ${row.compose}`);
    const nameCell = await page.$eval('#containers tbody tr td.name', (td) => td.firstChild.textContent);
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
