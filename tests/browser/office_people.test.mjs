// office_people.test.mjs: the back office's people sections in a browser,
// against a real `kopilka serve`: an admin finds a customer, opens and
// edits them (a refused phone shown under its field, then saved), posts an
// adjustment with a reason (once, however often clicked; in the audit
// log), blocks and replaces a card, makes a family and adds a member, adds
// a cashier (whose menu then shows only what a cashier may), a partner's
// staff bound to a partner picked from the running program's, and a till
// (its key shown once); a customer named like an HTML tag shows as text.
// Every section passes axe and is photographed at desktop and phone widths;
// Russian and English are both driven.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startKopilka, launch, newPage, assertClean, checkA11y, snap, waitFor, PASSWORD } from './harness.mjs';

const XSS = '<img src=x onerror=alert(1)>';
let k, browser, admin, page;
const ids = {};

async function register(card, full_name, phone, extra = {}) {
  const r = await k.api('POST', '/v1/customers', {
    card, full_name, phone, consent: { given: true, text_version: '2026-01' }, ...extra,
  }, admin);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

async function logIn(p, login, words) {
  await p.getByLabel(words.login).fill(login);
  await p.getByLabel(words.password).fill(PASSWORD);
  await p.getByRole('button', { name: words.enter }).click();
  await p.getByRole('navigation', { name: words.nav }).waitFor();
}

/* Opens a section by its hash route and waits for its h1. */
async function open(hash, heading) {
  await page.goto(k.base + '/office#' + hash);
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

before(async () => {
  k = await startKopilka({ staff: { root: 'admin' }, cards: 12 });
  admin = await k.login('root');
  ids.ivan = await register(k.cards[0], 'Иван Петренко', '8 916 765-43-21', { email: 'ivan@example.com' });
  ids.xss = await register(k.cards[1], XSS, '+7 916 765 43 22');
  ids.olga = await register(k.cards[2], 'Olga Member', '+7 916 765 43 23');
  const buy = await k.api('POST', '/v1/purchases', {
    card: k.cards[0], receipt: 'R-1', lines: [{ sku: 'OIL', category: 'parts', amount: 1250000 }],
  }, k.keys.main);
  assert.equal(buy.status, 201, JSON.stringify(buy.body));
  browser = await launch();
  page = await newPage(browser, { lang: 'ru' });
  page.on('dialog', (d) => {
    page.problems.push('a dialog opened: ' + d.message());
    d.dismiss();
  });
  await page.goto(k.base + '/office');
  await logIn(page, 'root', { login: 'Логин', password: 'Пароль', enter: 'Войти', nav: 'Разделы' });
});

after(async () => {
  await browser?.close();
  await k?.stop();
});

test('search a customer, open, edit: a refused phone under its field, then saved (Russian)', async () => {
  await open('/customers', 'Клиенты');
  await page.getByLabel('Искать по').selectOption('phone');
  await page.getByLabel('Что ищем').fill('+7 916 765 43 21');
  await page.getByRole('button', { name: 'Найти' }).click();
  await page.getByRole('link', { name: 'Иван Петренко' }).click();
  await page.getByRole('heading', { level: 1, name: 'Иван Петренко' }).waitFor();
  await page.getByRole('table', { name: 'Из чего состоит баланс (партии баллов)' }).waitFor();
  await page.getByRole('cell', { name: /Покупка, в магазине «main», чек R-1/ }).waitFor();
  await checkA11y(page, 'customer view');
  await snap(page, 'office-customer');
  await page.getByRole('link', { name: 'Изменить данные' }).click();
  // The edit form itself, once drawn: the view it replaces has fields and a
  // "Сохранить" of its own (preferences), which a slow render left in place.
  const edit = page.locator('form.edit');
  await edit.waitFor();
  const phone = edit.getByLabel('Телефон', { exact: true });
  await phone.fill('12');
  await edit.getByRole('button', { name: 'Сохранить' }).click();
  await page.locator('.field-error .error-text').first().waitFor();
  assert.equal(await phone.getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('.field-error .error-text').first().innerText(), /digit|phone|number/i);
  await checkA11y(page, 'customer edit with an error');
  await snap(page, 'office-customer-edit-error');
  await phone.fill('+7 916 765 43 99');
  await edit.getByRole('button', { name: 'Сохранить' }).click();
  await page.getByText('Данные сохранены.').waitFor();
  await page.getByText('+79167654399').waitFor();
  const got = await k.api('GET', '/v1/admin/customers/' + ids.ivan, undefined, admin);
  assert.equal(got.body.phone, '+79167654399');
  await open('/customers/new', 'Регистрация клиента');
  await checkA11y(page, 'register');
  assertClean(page);
});

test('a customer named like an HTML tag shows as text, never as markup', async () => {
  await open('/customers?by=phone&q=%2B79167654322', 'Клиенты');
  const link = page.getByRole('link', { name: XSS });
  await link.waitFor();
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  await snap(page, 'office-customers-search');
  await checkA11y(page, 'customer search');
  await link.click();
  await page.getByRole('heading', { level: 1, name: XSS }).waitFor();
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  assertClean(page);
});

test('an adjustment with a reason is posted once, however often clicked, and audited (English)', async () => {
  await page.getByRole('button', { name: 'English' }).click();
  await open('/adjustments', 'Manual adjustment');
  await page.getByText('Your limit: ±1,000,000,000 points per adjustment.').waitFor();
  const before = (await k.api('GET', '/v1/admin/cards/' + k.cards[2], undefined, admin)).body.balance;
  await page.getByLabel('Card number').fill(k.cards[2]);
  await page.getByLabel('Points', { exact: true }).fill('300');
  await page.getByLabel('Reason').fill('goodwill for the late order 42');
  await page.getByRole('button', { name: 'Post' }).dblclick();
  await page.getByText(/^Posted: \+300 on card/).waitFor();
  await page.getByRole('button', { name: 'Post' }).click();
  await page.getByText(/was posted already/).waitFor();
  const card = (await k.api('GET', '/v1/admin/cards/' + k.cards[2], undefined, admin)).body;
  assert.equal(card.balance, before + 300);
  const audit = await k.api('GET', '/v1/admin/audit?limit=1000', undefined, admin);
  const adjusts = audit.body.entries.filter((e) => e.action === 'ledger.adjust');
  assert.equal(adjusts.length, 1);
  assert.match(adjusts[0].detail, /goodwill for the late order 42/);
  assert.equal(adjusts[0].actor, 'staff:root');
  await checkA11y(page, 'adjustments');
  await snap(page, 'office-adjustments');
  assertClean(page);
});

test('a card is blocked, then replaced: the new card holds the account', async () => {
  await open('/cards', 'Cards');
  await checkA11y(page, 'cards lookup');
  await snap(page, 'office-cards');
  await page.getByLabel('Card number').fill(k.cards[0]);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByRole('heading', { level: 1, name: 'Card ' + k.cards[0] }).waitFor();
  await page.getByLabel('Reason', { exact: true }).first().fill('lost');
  await page.getByRole('button', { name: 'Block', exact: true }).click();
  await page.getByText('The card is blocked.').waitFor();
  await page.getByRole('button', { name: 'Unblock', exact: true }).waitFor();
  await checkA11y(page, 'card view');
  await snap(page, 'office-card');
  await page.getByRole('region', { name: 'Replace the card' }).getByLabel('Reason').fill('lost, a new card given');
  await page.getByRole('button', { name: 'Replace', exact: true }).click();
  await page.getByText(/The card is replaced/).waitFor();
  // The message may come a moment before the page moves to the new card.
  const fresh = await waitFor('the new card\'s heading', async () => {
    const heading = await page.getByRole('heading', { level: 1 }).innerText();
    const number = heading.replace(/^Card /, '');
    return number && number !== k.cards[0] ? number : null;
  });
  assert.notEqual(fresh, k.cards[0]);
  const old = (await k.api('GET', '/v1/admin/cards/' + k.cards[0], undefined, admin)).body;
  assert.equal(old.state, 'replaced');
  assert.equal(old.replaced_by, fresh);
  const now = (await k.api('GET', '/v1/admin/cards/' + fresh, undefined, admin)).body;
  assert.equal(now.customer, ids.ivan);
  assert.ok(now.lots.length >= 1, 'the lots moved with the account');
  assertClean(page);
});

test('a family is made for its owner and a member is added', async () => {
  await open('/customers/' + ids.ivan, 'Иван Петренко');
  await page.getByRole('button', { name: 'Create a family (this customer owns it)' }).click();
  await page.getByRole('heading', { level: 1, name: /^Family #\d+$/ }).waitFor();
  await page.getByLabel('Customer: a customer number or a card number').fill(String(ids.olga));
  await page.getByLabel('May spend the shared points').check();
  await page.getByRole('button', { name: 'Add a member' }).click();
  await page.getByText(`Customer #${ids.olga} joined the family.`).waitFor();
  await page.getByRole('link', { name: `Customer #${ids.olga}` }).waitFor();
  const c = (await k.api('GET', '/v1/admin/customers/' + ids.olga, undefined, admin)).body;
  assert.equal(c.family.owner, false);
  assert.equal(c.family.may_spend, true);
  await checkA11y(page, 'family view');
  await snap(page, 'office-family');
  await open('/families', 'Families');
  await checkA11y(page, 'families');
  assertClean(page);
});

test('a cashier is added, and sees only what a cashier may', async () => {
  await open('/staff', 'Staff');
  await page.getByLabel('Login', { exact: true }).fill('kassa1');
  await page.getByLabel('Role', { exact: true }).selectOption('cashier');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Add a member of staff' }).click();
  await page.getByText('kassa1 is added.').waitFor();
  await page.getByRole('cell', { name: 'kassa1', exact: true }).waitFor();
  await checkA11y(page, 'staff');
  await snap(page, 'office-staff');
  const cashier = await newPage(browser, { lang: 'en' });
  await cashier.goto(k.base + '/office');
  await logIn(cashier, 'kassa1', { login: 'Login', password: 'Password', enter: 'Log in', nav: 'Sections' });
  const menu = await cashier.getByRole('navigation', { name: 'Sections' }).getByRole('link').allInnerTexts();
  assert.deepEqual(menu, ['Cards']);
  await cashier.getByRole('heading', { level: 1, name: 'Cards' }).waitFor();
  assert.equal(await cashier.getByRole('heading', { name: 'Card batches' }).count(), 0, 'a cashier issues no batches');
  assertClean(cashier);
  await cashier.context().close();
});

test("a partner's staff is added with a partner of the running program", async () => {
  const running = await k.api('GET', '/v1/admin/programs?limit=1', undefined, admin);
  const v = await k.api('GET', '/v1/admin/programs/' + running.body.running, undefined, admin);
  const doc = { ...v.body.program, partners: [{ code: 'wash', name: 'Car wash', stores: ['WASH-*'] }] };
  const load = await k.api('POST', '/v1/admin/programs', { program: doc }, admin);
  assert.equal(load.status, 201, JSON.stringify(load.body));
  await new Promise((r) => setTimeout(r, 1500)); // every server takes it up within a second
  await open('/staff', 'Staff');
  await page.getByLabel('Login', { exact: true }).fill('wash1');
  await page.getByLabel('Role', { exact: true }).selectOption('partner');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Add a member of staff' }).click();
  await page.getByText('is required for the partner role').first().waitFor(); // no partner chosen
  await page.getByLabel('Partner', { exact: true }).selectOption({ label: 'Car wash (wash)' });
  await page.getByRole('button', { name: 'Add a member of staff' }).click();
  await page.getByText('wash1 is added.').waitFor();
  await page.getByRole('cell', { name: 'wash', exact: true }).waitFor();
  await checkA11y(page, 'staff with a partner');
  const token = await k.login('wash1');
  const me = await k.api('GET', '/v1/partner/me', undefined, token);
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.equal(me.body.partner.code, 'wash');
  assert.equal((await k.api('GET', '/v1/admin/staff', undefined, token)).status, 403);
  assertClean(page);
});

test('an admin sets a new password: the old one no longer opens the account', async () => {
  await open('/staff', 'Staff');
  await page.getByLabel('Member of staff', { exact: true }).selectOption({ label: 'kassa1' });
  await page.getByLabel('New password', { exact: true }).fill('a brand new secret');
  await page.getByRole('button', { name: 'Set the password' }).click();
  await page.getByText('The password of kassa1 is changed; their sessions are ended.').waitFor();
  let r = await k.api('POST', '/v1/admin/login', { login: 'kassa1', password: PASSWORD });
  assert.equal(r.status, 401);
  r = await k.api('POST', '/v1/admin/login', { login: 'kassa1', password: 'a brand new secret' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await checkA11y(page, 'staff with a new password');
  assertClean(page);
});

test('notification settings are changed from the customer view', async () => {
  await open('/customers/' + ids.olga, 'Olga Member');
  await page.getByRole('button', { name: 'Change notification settings' }).click();
  const transactional = page.getByRole('group', { name: 'About operations' });
  await transactional.getByLabel('SMS').uncheck();
  await page.getByLabel('Marketing consent').check();
  await page.getByLabel('Consent text version').fill('2026-01');
  await page.getByLabel('Time zone (UTC)').fill('+5');
  await page.getByRole('button', { name: 'Save the settings' }).click();
  await page.locator('#' + (await page.getByLabel('Time zone (UTC)').getAttribute('id')) + '-err').waitFor();
  await checkA11y(page, 'notification settings with an error');
  await page.getByLabel('Time zone (UTC)').fill('+05:00');
  await page.getByRole('button', { name: 'Save the settings' }).click();
  await page.getByText('The notification settings are saved.').waitFor();
  const r = await k.api('GET', `/v1/customers/${ids.olga}/notifications`, undefined, admin);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.transactional, ['email']);
  assert.equal(r.body.utc_offset, '+05:00');
  assert.equal(r.body.marketing_consent.given, true);
  assertClean(page);
});

test('a till is added and its key shown once', async () => {
  await open('/terminals', 'Tills');
  await page.getByLabel('Store', { exact: true }).fill('kiosk-2');
  await page.getByRole('button', { name: 'Add a till' }).click();
  const key = await page.locator('.secret-value').innerText();
  assert.match(key, /^kp_[0-9a-f]{48}$/);
  const works = await k.api('GET', '/v1/cards/' + k.cards[5], undefined, key);
  assert.equal(works.status, 200);
  await page.getByRole('cell', { name: 'kiosk-2' }).waitFor();
  await checkA11y(page, 'tills with a key');
  await snap(page, 'office-terminals');
  await page.reload();
  await page.getByRole('cell', { name: 'kiosk-2' }).waitFor();
  assert.equal(await page.getByText(key).count(), 0, 'the key is not shown again');
  assertClean(page);
});

test('notifications: the outbox, a message, templates and webhooks pass axe', async () => {
  await open('/messages', 'Outbox');
  await page.getByRole('table').waitFor();
  await checkA11y(page, 'outbox');
  await snap(page, 'office-outbox');
  const first = page.getByRole('link', { name: /^Message #\d+$/ }).first();
  if (await first.count()) {
    await first.click();
    await page.getByRole('heading', { level: 1, name: /^Message #\d+$/ }).waitFor();
    await page.getByRole('heading', { name: 'Content' }).waitFor();
    await checkA11y(page, 'message');
  }
  await open('/messages/templates', 'Templates');
  await checkA11y(page, 'templates');
  await page.getByRole('link', { name: 'welcome' }).first().click();
  await page.getByRole('heading', { level: 1, name: /^Template: welcome/ }).waitFor();
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByRole('heading', { name: 'How it looks (with sample figures)' }).waitFor();
  await checkA11y(page, 'template');
  await snap(page, 'office-template');
  await open('/messages/webhooks', 'Webhooks');
  await page.getByLabel('Address (URL)').fill('https://hooks.example.com/kopilka');
  await page.getByRole('button', { name: 'Add a webhook' }).click();
  assert.match(await page.locator('.secret-value').innerText(), /^whsec_/);
  await checkA11y(page, 'webhooks');
  await snap(page, 'office-webhooks');
  assertClean(page);
});

test('the sections on a phone', async () => {
  const phone = await newPage(browser, { lang: 'ru', phone: true, viewport: { width: 390, height: 844 } });
  await phone.goto(k.base + '/office');
  await logIn(phone, 'root', { login: 'Логин', password: 'Пароль', enter: 'Войти', nav: 'Разделы' });
  await phone.goto(k.base + '/office#/customers/' + ids.olga);
  await phone.getByRole('heading', { level: 1, name: 'Olga Member' }).waitFor();
  await checkA11y(phone, 'customer view on a phone');
  assertClean(phone);
  await phone.context().close();
});
