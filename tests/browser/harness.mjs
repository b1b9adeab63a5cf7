// harness.mjs: what the browser tests share. Starts a real `kopilka serve`
// on a fresh database (with staff, a terminal, cards, and the notification
// fakes of tests/integration/fakes.py so a test reads the login code a
// customer would get), drives Debian's chromium through playwright-core
// (web/node_modules), checks a page with axe-core, and keeps screenshots at
// desktop and phone widths under $KOPILKA_ARTIFACTS (build/browser-artifacts).
//
// Environment (set by tests/CMakeLists.txt): KOPILKA_BIN, KOPILKA_SOURCE,
// KOPILKA_PYTHON3, KOPILKA_ARTIFACTS.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

export const SOURCE = process.env.KOPILKA_SOURCE || new URL('../..', import.meta.url).pathname;
export const BIN = process.env.KOPILKA_BIN || join(SOURCE, 'build', 'kopilka');
export const PYTHON3 = process.env.KOPILKA_PYTHON3 || 'python3';
export const ARTIFACTS = process.env.KOPILKA_ARTIFACTS || join(SOURCE, 'build', 'browser-artifacts');
const requireWeb = createRequire(join(SOURCE, 'web', 'package.json'));
const { chromium } = requireWeb('playwright-core');
const AXE = readFileSync(requireWeb.resolve('axe-core/axe.min.js'), 'utf8');

export const PASSWORD = 'correct horse battery';
export const DESKTOP = { width: 1280, height: 800 };
export const TILL = { width: 1024, height: 768 };
export const PHONE = { width: 390, height: 844 };

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function waitFor(what, check, timeoutMs = 20000, stepMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await sleep(stepMs);
  }
}

export function cli(args, opts = {}) {
  return execFileSync(BIN, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...opts });
}

/* A loopback fake of fakes.py ("smtp" or "sms"): {port, log, received(), stop()}. */
async function startFake(kind, dir) {
  const portFile = join(dir, kind + '.port');
  const log = join(dir, kind + '.log');
  const proc = spawn(PYTHON3, [join(SOURCE, 'tests/integration/fakes.py'), kind, '--port-file', portFile, '--log', log], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const port = await waitFor(`the ${kind} fake`, () => {
    try {
      const p = Number(readFileSync(portFile, 'utf8').trim());
      return p > 0 ? p : null;
    } catch {
      return null;
    }
  });
  return {
    port,
    log,
    received() {
      if (!existsSync(log)) return [];
      return readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    },
    stop() {
      proc.kill('SIGTERM');
    },
  };
}

/*
 * startKopilka(options) → k: a served database.
 * options: program (a path or an object: the program file; default the
 * demo's examples/autoservice-case1.json with transfers, families and
 * unregistered cards allowed), staff ({login: role}, password PASSWORD),
 * stores (terminal keys made, default ['main']), cards (how many issued,
 * default 10), notify (default true: e-mail and SMS to the fakes),
 * serveArgs.
 * k: {base, db, dir, cards, keys: {store: key}, sms, smtp, cli(args),
 *     api(method, path, body, token), login(login) → staff token,
 *     code(to) → the latest login code sent to a phone or e-mail, stop()}
 */
export async function startKopilka(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kopilka-browser-'));
  const db = join(dir, 'shop.db');
  let program = options.program;
  if (!program || typeof program === 'object') {
    const base = JSON.parse(readFileSync(join(SOURCE, 'examples/autoservice-case1.json'), 'utf8'));
    const doc = program || {
      ...base,
      customers: {
        ...(base.customers || {}),
        consent_version: '2026-01',
        transfers: { kinds: ['regular'], max_points: 100000, daily_max_points: 200000 },
      },
      notifications: { quiet_hours: { from: '00:00', to: '00:00' } },
    };
    program = join(dir, 'program.json');
    writeFileSync(program, JSON.stringify(doc));
  }
  cli(['init', db, '--program', program]);
  const pw = join(dir, 'password');
  writeFileSync(pw, PASSWORD + '\n');
  const staff = options.staff || { admin: 'admin' };
  for (const [login, role] of Object.entries(staff))
    cli(['staff', 'add', db, '--login', login, '--role', role, '--password-file', pw]);
  const keys = {};
  for (const store of options.stores || ['main'])
    keys[store] = cli(['terminal', 'add', db, '--store', store]).trim();
  const cards = options.cards === 0 ? [] : cli(['cards', 'issue', db, '--count', String(options.cards || 10)])
    .trim()
    .split('\n');
  const k = { dir, db, cards, keys, procs: [] };
  const serveArgs = [...(options.serveArgs || [])];
  if (options.notify !== false) {
    k.smtp = await startFake('smtp', dir);
    k.sms = await startFake('sms', dir);
    const notify = {
      webhooks: { enabled: true, timeout_seconds: 5 },
      email: { url: `smtp://127.0.0.1:${k.smtp.port}`, starttls: 'off', from: 'Kopilka <noreply@example.com>', timeout_seconds: 5 },
      sms: {
        profile: 'generic', url: `http://127.0.0.1:${k.sms.port}/send`, success: { field: 'status', value: 'OK' },
        provider_id_field: 'id', sender: 'Kopilka', timeout_seconds: 5,
      },
      public_url: 'http://127.0.0.1',
    };
    writeFileSync(join(dir, 'notify.json'), JSON.stringify(notify));
    serveArgs.push('--notify', join(dir, 'notify.json'));
  }
  const port = await freePort();
  k.base = `http://127.0.0.1:${port}`;
  const log = join(dir, 'serve.log');
  writeFileSync(log, '');
  k.server = spawn(BIN, ['serve', db, '--listen', `127.0.0.1:${port}`, ...serveArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let serverLog = '';
  k.server.stderr.on('data', (d) => (serverLog += d));
  k.serverLog = () => serverLog;
  await waitFor('kopilka serve', async () => {
    if (k.server.exitCode !== null) throw new Error('kopilka serve exited:\n' + serverLog);
    try {
      return (await fetch(k.base + '/ready')).status === 200;
    } catch {
      return false;
    }
  });
  k.cli = (args) => cli(args);
  k.api = async (method, path, body, token) => {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await fetch(k.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
  k.login = async (login) => {
    const r = await k.api('POST', '/v1/admin/login', { login, password: PASSWORD });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.token;
  };
  /* The latest code in a message's own text (an SMS's fields, an e-mail's
   * body) to `to`: never in the fakes' bookkeeping (times, ids). */
  k.code = async (to) =>
    waitFor(`a login code sent to ${to}`, () => {
      const texts = [
        ...(k.sms ? k.sms.received() : []).map((m) => [JSON.stringify(m.fields || {}), m.fields || {}]),
        ...(k.smtp ? k.smtp.received() : []).map((m) => [(m.rcpt_tos || []).join(' '), { text: m.text || '' }]),
      ].reverse();
      for (const [head, fields] of texts) {
        if (!head.includes(to)) continue;
        const body = Object.values(fields).filter((v) => typeof v === 'string' && !v.includes(to)).join(' ');
        const code = body.match(/(?<![\d.])(\d{6})(?![\d.])/);
        if (code) return code[1];
      }
      return null;
    });
  k.stop = async () => {
    if (k.server.exitCode === null) {
      k.server.kill('SIGTERM');
      await waitFor('kopilka serve to stop', () => k.server.exitCode !== null, 10000).catch(() => k.server.kill('SIGKILL'));
    }
    k.smtp?.stop();
    k.sms?.stop();
    if (!process.env.KOPILKA_KEEP) rmSync(dir, { recursive: true, force: true });
  };
  return k;
}

/*
 * The browser's clock reads the programs' calendar, as the browser of a
 * manager at the shop does: the examples' programs are "+03:00", Moscow's
 * (no summer time since 2014). Pages pick "today" in the browser's zone; a
 * test that names a day for the API names it in the same calendar with
 * programDay(), or after 21:00 UTC the two would disagree.
 */
export const PROGRAM_ZONE = 'Europe/Moscow';
const PROGRAM_OFFSET_MS = 3 * 3600 * 1000;

/* The program's calendar day of `d` (default now), YYYY-MM-DD. */
export function programDay(d = new Date()) {
  return new Date(d.getTime() + PROGRAM_OFFSET_MS).toISOString().slice(0, 10);
}

/* The first day of the month `back` months before today's, in the program's calendar. */
export function programMonthStart(back) {
  const d = new Date(Date.now() + PROGRAM_OFFSET_MS);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 1)).toISOString().slice(0, 10);
}

/* Debian's chromium, headless. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.KOPILKA_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/*
 * A new page (own context: own cookies) at `viewport` (DESKTOP, TILL or
 * PHONE), language `lang`. Every uncaught script error, console error and
 * Content-Security-Policy violation is kept in page.problems; assertClean
 * fails on any.
 */
export async function newPage(browser, { viewport = DESKTOP, lang = 'ru', phone = false } = {}) {
  const context = await browser.newContext({
    viewport,
    locale: lang === 'ru' ? 'ru-RU' : 'en-GB',
    timezoneId: PROGRAM_ZONE,
    isMobile: phone,
    hasTouch: phone,
    deviceScaleFactor: 1,
  });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push('script error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    // A failed API call the page handled and showed is no problem; a
    // violated policy or a script error is.
    if (/Failed to load resource: the server responded with a status of (4\d\d)/.test(text)) return;
    page.problems.push('console: ' + text);
  });
  return page;
}

export function assertClean(page) {
  assert.deepEqual(page.problems, [], 'the page logged problems');
}

let shotCount = 0;
/* Screenshots of the page as it is now, at desktop and phone widths (or the
 * till's 1024×768 and a phone for the till), under ARTIFACTS/<name>-*.png. */
export async function snap(page, name, widths = [DESKTOP, PHONE]) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const before = page.viewportSize();
  for (const v of widths) {
    await page.setViewportSize(v);
    await sleep(50);
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${v.width}.png`), fullPage: true });
  }
  await page.setViewportSize(before);
  shotCount++;
}

/* axe-core on the page as it is now: fails on every violation of WCAG 2 A
 * and AA rules, naming the rule and the elements. */
export async function checkA11y(page, label) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  const problems = result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`,
  );
  assert.deepEqual(problems, [], `accessibility of ${label}`);
}

/* A back-office page (own context) of kopilka `k` at #path, logged in as
 * `login` with PASSWORD in language `lang`, once the menu shows. */
export async function officePage(browser, k, path, { lang = 'en', viewport, login = 'admin' } = {}) {
  const page = await newPage(browser, { lang, viewport });
  await page.goto(k.base + '/office#' + path);
  await page.getByLabel(lang === 'ru' ? 'Логин' : 'Login').fill(login);
  await page.getByLabel(lang === 'ru' ? 'Пароль' : 'Password').fill(PASSWORD);
  await page.getByRole('button', { name: lang === 'ru' ? 'Войти' : 'Log in' }).click();
  await page.getByRole('navigation', { name: lang === 'ru' ? 'Разделы' : 'Sections' }).waitFor();
  return page;
}
