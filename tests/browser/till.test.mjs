// till.test.mjs: the cashier page at /till in a real browser at the till's
// 1024×768: an admin pairs the till, a cashier logs in, identifies a card,
// enters a basket, burns the most points can pay and commits; the receipt
// (and its print media); a purchase whose first answer is lost is resent
// and made once; a receipt number taken elsewhere is a clear 409; a
// return; a new customer registered at the till and found by phone; the
// whole purchase with the keyboard alone; axe, screenshots, Russian and
// English.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startKopilka, launch, newPage, assertClean, checkA11y, snap, PASSWORD, TILL, PHONE, SOURCE, ARTIFACTS,
} from './harness.mjs';

let k, browser, key;
const history = async (card) => (await k.api('GET', `/v1/cards/${card}`, undefined, key)).body;

before(async () => {
  const base = JSON.parse(readFileSync(join(SOURCE, 'examples/autoservice-case1.json'), 'utf8'));
  k = await startKopilka({
    staff: { anna: 'admin', kate: 'cashier', olga: 'manager' },
    cards: 8,
    notify: false,
    program: { ...base, customers: { consent_version: '2026-01' }, till: { identify_by_phone: true } },
  });
  key = k.keys.main;
  // Points to burn: each of the first cards has made a purchase already.
  for (const [i, card] of k.cards.slice(0, 4).entries()) {
    const r = await k.api('POST', '/v1/purchases', {
      card, receipt: `SEED-${i}`, lines: [{ sku: 'OIL', category: 'parts', amount: 1250000 }],
    }, key);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

/* A till page already paired with the store "main" (what the pairing
 * test does through the page), the cashier logged in. */
let tills = 0;
async function tillPage(lang, login = 'kate') {
  const page = await newPage(browser, { viewport: TILL, lang });
  await page.goto(k.base + '/till');
  await page.evaluate((p) => localStorage.setItem('kopilka.till.pairing', JSON.stringify(p)),
    { key, store: 'main', terminal: null, tag: `x${lang}${++tills}` });
  await page.reload();
  const en = lang === 'en';
  await page.getByLabel(en ? 'Login' : 'Логин').fill(login);
  await page.getByLabel(en ? 'Password' : 'Пароль').fill(PASSWORD);
  await page.getByRole('button', { name: en ? 'Log in' : 'Войти' }).click();
  await page.getByText((en ? 'Cashier: ' : 'Кассир: ') + login).waitFor();
  return page;
}

async function finish(page) {
  assertClean(page);
  await page.context().close();
}

/* The till's next receipt number, as the page will make it. */
async function nextReceiptOf(page) {
  return page.evaluate(() => {
    const p = JSON.parse(localStorage.getItem('kopilka.till.pairing'));
    const c = JSON.parse(localStorage.getItem('kopilka.till.counter') || 'null');
    const d = new Date();
    const date = `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
    const n = c && c.date === date ? c.n + 1 : 1;
    return `T${p.tag}-${date}-${String(n).padStart(4, '0')}`;
  });
}

async function addLine(page, sku, category, qty, price) {
  await page.getByLabel('SKU (F3)').fill(sku);
  await page.getByLabel('Category').fill(category);
  await page.getByLabel('Qty').fill(String(qty));
  await page.getByLabel('Price').fill(price);
  await page.getByRole('button', { name: 'Add line' }).click();
}

test('pair (admin), cashier login, identify, basket, quote, burn max, commit, receipt, print', async () => {
  const page = await newPage(browser, { viewport: TILL, lang: 'en' });
  await page.goto(k.base + '/till');
  await page.getByRole('heading', { name: 'Pair this till' }).waitFor();
  await checkA11y(page, 'till pairing');
  // A cashier may not pair.
  await page.getByLabel('Login').fill('kate');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('Only an admin may pair a till').waitFor();
  await page.getByLabel('Login').fill('anna');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'New key for a store' }).waitFor();
  // The key field refuses what is not a key, before asking the server.
  await page.getByLabel('Terminal key').fill('kp_nope');
  await page.getByRole('button', { name: 'Pair with this key' }).click();
  await page.getByText('A key is kp_ and 48 hex digits.').waitFor();
  await checkA11y(page, 'till pairing, admin logged in');
  await snap(page, 'till-pair', [TILL, PHONE]);
  await page.getByLabel('Store', { exact: true }).fill('main');
  await page.getByRole('button', { name: 'Make the key and pair' }).click();
  // Paired: the admin's session is over, the cashier logs in.
  await page.getByRole('heading', { name: 'Cashier login' }).waitFor();
  const pairing = await page.evaluate(() => JSON.parse(localStorage.getItem('kopilka.till.pairing')));
  assert.match(pairing.key, /^kp_[0-9a-f]{48}$/);
  assert.equal(pairing.store, 'main');
  assert.equal(pairing.tag, String(pairing.terminal));
  await page.getByText(`Store main, till T${pairing.tag}.`).waitFor();
  await checkA11y(page, 'cashier login');
  await page.getByLabel('Login').fill('kate');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('Cashier: kate').waitFor();
  assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');

  // Identify the card: its balance, and focus moves on to the basket.
  const card = k.cards[0];
  const before = await history(card);
  await page.getByLabel('Card or phone (F2)').fill(card);
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByText(`Card ${card}`).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.name), 'sku');
  assert.match(await page.locator('.who').innerText(), /Balance\s+1,500/);

  // The basket: two lines, one edited, one removed, one added again.
  await addLine(page, 'OIL-5W30', 'parts', 2, '1250');
  await addLine(page, 'LAB-1', 'labor', 1, '5000');
  await addLine(page, 'WIPER', 'parts', 1, '300,50');
  await page.getByRole('button', { name: 'Remove line WIPER' }).click();
  await page.getByRole('button', { name: 'Edit line OIL-5W30' }).click();
  await page.waitForFunction(() => document.querySelector('input[name=price]').value === '1250');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'sku');
  await page.getByLabel('Qty').fill('1');
  await page.getByLabel('Price').fill('12500');
  await page.getByRole('button', { name: 'Save line' }).click();
  const rows = page.locator('.basket tbody tr');
  await assert.doesNotReject(() => page.waitForFunction(() => document.querySelectorAll('.basket tbody tr').length === 2));
  assert.match(await rows.nth(0).innerText(), /OIL-5W30/);
  // The quote: the most points can pay (a labor rule caps it) and why.
  await page.getByText('up to 500 points').waitFor();
  await page.getByText(/Limited by: rule burn-labor-10/).waitFor();
  assert.equal(await page.getByLabel('Points to burn').inputValue(), '0');
  await checkA11y(page, 'till sale with a quote');
  await snap(page, 'till-sale', [TILL, PHONE]);
  // Max (F7 or the button), then pay.
  await page.getByRole('button', { name: /^Max/ }).click();
  await page.waitForFunction(() => document.querySelector('input[name=burn]').value === '500');
  await page.getByText('(500 pts)').first().waitFor();
  await page.getByRole('button', { name: /^Pay/ }).click();
  await page.getByRole('heading', { name: 'Purchase made' }).waitFor();
  const receipt = page.locator('.receipt');
  const text = await receipt.innerText();
  assert.match(text, /Cashier\s+kate/);
  assert.match(text, /Store\s+main/);
  assert.match(text, /Loyalty card/, "the answer's receipt_lines");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'New sale F8');
  await checkA11y(page, 'till receipt');
  await snap(page, 'till-receipt', [TILL]);
  await page.emulateMedia({ media: 'print' });
  await page.screenshot({ path: join(ARTIFACTS, 'till-receipt-print.png'), fullPage: true });
  assert.equal(await page.getByRole('button', { name: /New sale/ }).isVisible(), false, 'buttons are not printed');
  assert.equal(await receipt.isVisible(), true);
  await page.emulateMedia({ media: 'screen' });

  // The server made it once: 500 burnt, 1 500 + 180 earned.
  const after = await history(card);
  const made = after.history.filter((h) => h.type === 'purchase' && h.receipt !== 'SEED-0');
  assert.equal(made.length, 1);
  assert.equal(after.balance, before.balance - 500 + 1680);
  await finish(page);
});

test('a purchase whose answer is lost is resent with the same receipt, and made once', async () => {
  const page = await tillPage('en');
  const card = k.cards[1];
  const before = await history(card);
  await page.getByLabel('Card or phone (F2)').fill(card);
  await page.keyboard.press('Enter');
  await page.getByText(`Card ${card}`).waitFor();
  await addLine(page, 'LAB-2', 'labor', 1, '5000');
  await page.getByText('up to 500 points').waitFor();
  await page.keyboard.press('F7');
  await page.waitForFunction(() => document.querySelector('input[name=burn]').value === '500');

  // First a receipt number some other till took: a clear 409, nothing made.
  const taken = await nextReceiptOf(page);
  const other = await k.api('POST', '/v1/purchases', {
    card: k.cards[3], receipt: taken, lines: [{ sku: 'X', amount: 100 }],
  }, key);
  assert.equal(other.status, 201);
  await page.keyboard.press('F9');
  await page.getByText(`Receipt number ${taken} is taken by another purchase in this store`).waitFor();
  assert.equal((await history(card)).balance, before.balance);

  // Then the first answer to the purchase is lost after the server made it.
  const bodies = [];
  let first = true;
  await page.route('**/v1/purchases', async (route) => {
    bodies.push(route.request().postData());
    if (first) {
      first = false;
      const res = await route.fetch();
      assert.equal(res.status(), 201);
      await route.abort('connectionreset');
    } else {
      await route.continue();
    }
  });
  await page.getByRole('button', { name: 'Take a new receipt number' }).click();
  await page.keyboard.press('F9');
  await page.getByRole('heading', { name: 'Purchase made (answer to a resend)' }).waitFor();
  assert.equal(bodies.length, 2);
  assert.equal(bodies[0], bodies[1], 'the same receipt and body');
  const sent = JSON.parse(bodies[0]);
  assert.notEqual(sent.receipt, taken);
  assert.equal(sent.burn, 500);
  const after = await history(card);
  assert.equal(after.history.filter((h) => h.receipt === sent.receipt).length, 1, 'made once');
  assert.equal(after.balance, before.balance - 500 + 180);
  assert.equal(await page.evaluate(() => localStorage.getItem('kopilka.till.pending')), null);
  page.problems = page.problems.filter((p) => !/ERR_CONNECTION_RESET|Failed to fetch/.test(p));
  await finish(page);
});

test('keyboard only (Russian): login, identify, basket, max, pay, next card scanned', async () => {
  const page = await newPage(browser, { viewport: TILL, lang: 'ru' });
  await page.goto(k.base + '/till');
  await page.evaluate((p) => localStorage.setItem('kopilka.till.pairing', JSON.stringify(p)),
    { key, store: 'main', terminal: null, tag: 'xkb' });
  await page.reload();
  await page.getByRole('heading', { name: 'Вход кассира' }).waitFor();
  const kb = page.keyboard;
  await kb.type('kate');
  await kb.press('Tab');
  await kb.type(PASSWORD);
  await kb.press('Enter');
  await page.getByText('Кассир: kate').waitFor();
  const card = k.cards[2];
  const before = await history(card);
  await kb.type(card);
  await kb.press('Enter');
  await page.getByText(`Карта ${card}`).waitFor();
  // SKU, Enter, category, Enter, quantity, Enter, price, Enter.
  await kb.type('LAB-3');
  await kb.press('Enter');
  await kb.type('labor');
  await kb.press('Enter');
  await kb.press('Enter');
  await kb.type('5000');
  await kb.press('Enter');
  await page.getByText('до 500 баллов').waitFor();
  await kb.press('F7');
  await page.waitForFunction(() => document.activeElement.name === 'burn' && document.activeElement.value === '500');
  await kb.press('F9');
  await page.getByRole('heading', { name: 'Покупка проведена' }).waitFor();
  assert.equal((await history(card)).balance, before.balance - 500 + 180);
  await checkA11y(page, 'till receipt (ru)');
  await snap(page, 'till-receipt-ru', [TILL]);
  // The next customer's card, scanned on the receipt: a new sale.
  const next = k.cards[3];
  await kb.type(next);
  await kb.press('Enter');
  await page.getByText(`Карта ${next}`).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.name), 'sku');
  // Lock: back to the login, the basket kept.
  await kb.press('Alt+L');
  await page.getByRole('heading', { name: 'Вход кассира' }).waitFor();
  await finish(page);
});

test('a return against a receipt', async () => {
  const page = await tillPage('en');
  const card = k.cards[0];
  const before = await history(card);
  const bought = before.history.find((h) => h.type === 'purchase' && h.receipt.startsWith('T'));
  await page.keyboard.press('Alt+R');
  await page.getByRole('heading', { name: 'Return against a receipt' }).waitFor();
  await page.getByLabel('Card number').fill(card);
  await page.getByLabel('Purchase receipt').fill(bought.receipt);
  await page.getByLabel(/Return the whole purchase/).uncheck();
  await page.getByLabel('SKU, line 1').fill('LAB-1');
  await checkA11y(page, 'till return form');
  await snap(page, 'till-return', [TILL, PHONE]);
  await page.keyboard.press('F9');
  await page.getByRole('heading', { name: 'Return made' }).waitFor();
  const text = await page.locator('.receipt').innerText();
  assert.match(text, new RegExp(`Purchase receipt\\s+${bought.receipt}`));
  const after = await history(card);
  const ret = after.history.filter((h) => h.type === 'return');
  assert.equal(ret.length, 1);
  // The labor line's 180 points earned are taken back, its 500 burnt given back.
  assert.equal(after.balance, before.balance - 180 + 500);
  await checkA11y(page, 'till return receipt');
  // A receipt the store never made: the server's 404, at its field.
  await page.keyboard.press('F8');
  await page.getByLabel('Card number').fill(card);
  await page.getByLabel('Purchase receipt').fill('NO-SUCH');
  await page.getByRole('button', { name: /Make the return/ }).click();
  await page.getByRole('alert').filter({ hasText: 'original_receipt' }).waitFor();
  await finish(page);
});

test('register a new customer at the till, then sell to them found by phone', async () => {
  const page = await tillPage('ru');
  await page.getByRole('button', { name: 'English' }).click();
  await page.keyboard.press('Alt+N');
  await page.getByRole('heading', { name: 'Register a new customer' }).waitFor();
  const card = k.cards[5];
  const name = '<img src=x onerror=alert(1)>';
  await page.getByLabel('Card number').fill(card);
  await page.getByLabel('Full name').fill(name);
  await page.getByLabel('Phone', { exact: true }).fill('12');
  await page.keyboard.press('F9');
  // Every wrong field at its field: the phone, the consent, its version.
  await page.getByText('Fix the marked fields.').waitFor();
  assert.equal(await page.getByLabel('Phone', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByLabel('Consent text version').getAttribute('aria-invalid'), 'true');
  await checkA11y(page, 'till registration with errors');
  await snap(page, 'till-register', [TILL, PHONE]);
  await page.getByLabel('Phone', { exact: true }).fill('8 916 765-43-21');
  await page.getByLabel(/signed the consent/).check();
  await page.getByLabel('Consent text version').fill('2026-01');
  await page.keyboard.press('F9');
  await page.getByRole('heading', { name: 'Customer registered' }).waitFor();
  await page.getByText(`${name}, card ${card}.`).waitFor();
  assert.equal(await page.locator('img').count(), 0, 'the name is text');
  const staff = await k.login('olga');
  const found = await k.api('POST', '/v1/admin/customers/search', { phone: '+79167654321' }, staff);
  assert.equal(found.status, 200, JSON.stringify(found.body));
  assert.equal(JSON.stringify(found.body).includes(card), true);
  // The consent version is remembered for the next registration.
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('kopilka.till.consent'))), '2026-01');
  await page.keyboard.press('F8');
  await page.getByText(`Card ${card}`).waitFor();
  await page.getByText('registered', { exact: true }).waitFor();
  // Found by phone at the next sale.
  await page.keyboard.press('F8');
  await page.keyboard.press('F8');
  await page.getByLabel('Card or phone (F2)').fill('+7 916 765 43 21');
  await page.keyboard.press('Enter');
  await page.getByText('by phone').waitFor();
  await page.getByText(`Card ${card}`).waitFor();
  await snap(page, 'till-by-phone', [TILL]);
  await finish(page);
});

test('unpair forgets the key; a revoked key is said so', async () => {
  const page = await tillPage('en');
  const admin = await k.login('anna');
  const made = await k.api('POST', '/v1/admin/terminals', { store: 'south' }, admin);
  assert.equal(made.status, 201);
  await page.evaluate((p) => localStorage.setItem('kopilka.till.pairing', JSON.stringify(p)),
    { key: made.body.key, store: 'south', terminal: made.body.id, tag: String(made.body.id) });
  await page.reload();
  await page.getByText('Cashier: kate').waitFor();
  const r = await k.api('POST', `/v1/admin/terminals/${made.body.id}/revoke`, {}, admin);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await page.getByLabel('Card or phone (F2)').fill(k.cards[0]);
  await page.keyboard.press('Enter');
  await page.getByText("The server no longer takes this till's key").waitFor();
  await page.getByRole('button', { name: 'Unpair this till' }).click();
  await page.getByRole('button', { name: 'Yes, unpair' }).click();
  await page.getByRole('heading', { name: 'Pair this till' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('kopilka.till.pairing')), null);
  // Paired again with a key pasted by the admin: the server checks it first.
  await page.getByLabel('Login').fill('anna');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByLabel('Terminal key').fill(made.body.key);
  await page.getByRole('button', { name: 'Pair with this key' }).click();
  await page.getByText('The server refused this key: it is unknown or revoked.').waitFor();
  await page.getByLabel('Terminal key').fill(' ' + key + ' ');
  await page.getByRole('button', { name: 'Pair with this key' }).click();
  await page.getByRole('heading', { name: 'Cashier login' }).waitFor();
  const pairing = await page.evaluate(() => JSON.parse(localStorage.getItem('kopilka.till.pairing')));
  assert.equal(pairing.key, key);
  assert.match(pairing.tag, /^x[0-9a-f]{6}$/);
  // The admin's session ended with the pairing.
  assert.equal((await page.evaluate(() => fetch('/v1/admin/me').then((r) => r.status))), 401);
  await finish(page);
});
