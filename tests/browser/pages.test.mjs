// pages.test.mjs: what every page owes, whatever its flows: served with
// its Content-Security-Policy and security headers, gzip'd and cached by
// ETag, no script error or policy violation on load, readable by axe-core,
// the language switch, and the staff cookie session with its CSRF check.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startKopilka, launch, newPage, assertClean, checkA11y, snap, PASSWORD } from './harness.mjs';

let k, browser;
before(async () => {
  k = await startKopilka({ staff: { anna: 'admin' }, notify: false });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

test('each page is served with its policy, compressed and revalidated', async () => {
  for (const path of ['/', '/till', '/office', '/office/']) {
    const res = await fetch(k.base + path, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const html = await res.text();
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]|style=/, 'no inline script or style');
    const again = await fetch(k.base + path, { headers: { 'If-None-Match': res.headers.get('etag') } });
    assert.equal(again.status, 304);
    const asset = html.match(/src="(\/assets\/[^"]+\.js)"/)[1];
    const a = await fetch(k.base + asset);
    assert.equal(a.status, 200);
    assert.match(a.headers.get('cache-control'), /immutable/);
  }
  const missing = await fetch(k.base + '/assets/nothing.js');
  assert.equal(missing.status, 404);
  const post = await fetch(k.base + '/office', { method: 'POST' });
  assert.equal(post.status, 405);
});

test('the staff cookie session: HttpOnly, SameSite, and CSRF on writes', async () => {
  const res = await fetch(k.base + '/v1/admin/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Kopilka-Session': 'cookie' },
    body: JSON.stringify({ login: 'anna', password: PASSWORD }),
  });
  assert.equal(res.status, 200);
  const cookie = res.headers.get('set-cookie');
  assert.match(cookie, /^kp_staff=kps_[0-9a-f]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
  const body = await res.json();
  assert.equal(body.token, undefined, 'the token stays in the cookie');
  assert.match(body.csrf, /^[0-9a-f]{32}$/);
  const jar = cookie.split(';')[0];
  const me = await fetch(k.base + '/v1/admin/me', { headers: { Cookie: jar } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).csrf, body.csrf);
  // A write by cookie without the token, with a wrong one, from another site.
  const write = (headers) =>
    fetch(k.base + '/v1/admin/card-batches', {
      method: 'POST',
      headers: { Cookie: jar, 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ count: 1, name: 'csrf-test' }),
    });
  let r = await write({});
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.field, 'X-CSRF-Token');
  r = await write({ 'X-CSRF-Token': '0'.repeat(32) });
  assert.equal(r.status, 403);
  r = await write({ 'X-CSRF-Token': body.csrf, Origin: 'http://evil.example' });
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.field, 'Origin');
  r = await write({ 'X-CSRF-Token': body.csrf });
  assert.equal(r.status, 201, await r.text());
  // Logging out clears the cookie.
  r = await fetch(k.base + '/v1/admin/logout', { method: 'POST', headers: { Cookie: jar, 'X-CSRF-Token': body.csrf } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('set-cookie'), /^kp_staff=; Path=\/; Max-Age=0/);
  r = await fetch(k.base + '/v1/admin/me', { headers: { Cookie: jar } });
  assert.equal(r.status, 401);
});

test('pages load clean, pass axe, switch language', async () => {
  for (const [path, name] of [['/', 'cabinet-start'], ['/till', 'till-start'], ['/office', 'office-start']]) {
    const page = await newPage(browser, { lang: 'en' });
    await page.goto(k.base + path);
    await page.waitForSelector('#app header');
    await checkA11y(page, path);
    await snap(page, name);
    assertClean(page);
    await page.context().close();
  }
  const page = await newPage(browser, { lang: 'ru' });
  await page.goto(k.base + '/office');
  await page.getByRole('button', { name: 'English' }).click();
  await page.getByLabel('Login').fill('anna');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('anna · admin').waitFor();
  await page.getByRole('navigation', { name: 'Sections' }).waitFor();
  // The cookie is HttpOnly: the page's script cannot read it.
  assert.equal(await page.evaluate(() => document.cookie), '');
  assertClean(page);
  await page.context().close();
});
