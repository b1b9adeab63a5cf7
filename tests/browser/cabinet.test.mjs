// cabinet.test.mjs: the customer cabinet (web/src/cabinet) end to end in the
// browser against a real `kopilka serve`: sign-up from the website form with
// the code read from the SMS fake, the balance moving after a till purchase,
// the history's explanations, logging in with a code, profile and
// preferences, blocking a lost card, a family invitation accepted in a
// second browser, a transfer with its errors on the fields, the export
// download and the erasure; a customer named <img src=x onerror=alert(1)>
// shows as text and no dialog ever opens. Every view passes axe and is
// photographed at desktop and phone widths, in Russian and English.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SOURCE, startKopilka, launch, newPage, assertClean, checkA11y, snap, waitFor, PHONE, DESKTOP,
} from './harness.mjs';

const XSS = '<img src=x onerror=alert(1)>';
const base = JSON.parse(readFileSync(join(SOURCE, 'examples/autoservice-case1.json'), 'utf8'));
const PROGRAM = {
  ...base,
  customers: {
    consent_version: '2026-01',
    transfers: { kinds: ['regular'], max_points: 1000, daily_max_points: 2000 },
  },
  notifications: { quiet_hours: { from: '00:00', to: '00:00' } },
  // A second currency (docs/coalition.md "Currencies"): a point is 5 tenge.
  currencies: [{ code: 'KZT', minor_per_point: 500 }],
  tiers: {
    window_days: 365,
    review_months: 1,
    levels: [{ name: 'Silver', min_spend: 0, privileges: ['free diagnostics', 'coffee'] }],
  },
};
const PHONES = { anna: '+79163334455', maria: '+79161112233', xss: '+79162223344' };

let k, browser, staff;
const ids = {};
const pages = [];

/* A page that fails the test if any dialog (alert, confirm) opens. */
async function open(options) {
  const page = await newPage(browser, options);
  page.on('dialog', (d) => {
    page.problems.push('a dialog opened: ' + d.message());
    d.dismiss().catch(() => null);
  });
  pages.push(page);
  return page;
}

/*
 * The code of the first SMS to `phone` after the first `since` the fake got
 * (by the message's text only: the fake's log has times whose fractions
 * look like codes, and an older message to the phone is no answer).
 */
const smsCount = () => k.sms.received().length;
function codeFor(phone, since) {
  return waitFor(`a code sent to ${phone}`, () => {
    for (const m of k.sms.received().slice(since)) {
      const f = m.fields || {};
      const code = f.to === phone && String(f.text || '').match(/\b(\d{6})\b/);
      if (code) return code[1];
    }
    return null;
  });
}

/* Waits until the field is marked wrong (its error tied to it). */
async function invalid(field) {
  await field.and(field.page().locator('[aria-invalid="true"]')).waitFor();
  const described = await field.getAttribute('aria-describedby');
  assert.ok(described && described.includes('-err'), 'the error is tied to the field');
}

/* axe and screenshots of the view as it is now. */
async function look(page, name) {
  await page.waitForLoadState('networkidle');
  await page.evaluate(() => window.scrollTo(0, 0));
  await checkA11y(page, name);
  await snap(page, 'cabinet-' + name);
}

async function register(card, full_name, phone) {
  const r = await k.api('POST', '/v1/customers', {
    card, full_name, phone, consent: { given: true, text_version: '2026-01' },
  }, staff);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

/* Logs in through the page with the code the SMS fake got. */
async function logIn(page, phone, words) {
  await page.goto(k.base + '/');
  await page.getByLabel(words.contact).fill(phone);
  const since = smsCount();
  await page.getByRole('button', { name: words.get }).click();
  const code = await codeFor(phone, since);
  await page.getByLabel(words.code).fill(code);
  await page.getByRole('button', { name: words.enter, exact: true }).click();
  await page.getByRole('navigation').waitFor();
}
const RU = { contact: 'Телефон или e-mail', get: 'Получить код', code: 'Код из сообщения', enter: 'Войти' };
const EN = { contact: 'Phone or e-mail', get: 'Get a code', code: 'Code from the message', enter: 'Log in' };

before(async () => {
  k = await startKopilka({ staff: { anna: 'admin' }, program: PROGRAM, cards: 6 });
  browser = await launch();
  staff = await k.login('anna');
  ids.maria = await register(k.cards[1], 'Мария Иванова', PHONES.maria);
  ids.xss = await register(k.cards[2], XSS, PHONES.xss);
  // Maria has a second card, the one she loses.
  const r = await k.api('POST', `/v1/admin/customers/${ids.maria}/cards`, { card: k.cards[3] }, staff);
  assert.equal(r.status, 200, JSON.stringify(r.body));
});
after(async () => {
  for (const p of pages) assertClean(p);
  await browser?.close();
  await k?.stop();
});

let anna; // the phone page of the customer who signs up (Russian)

test('sign-up from the website form, then the balance moves after a till purchase', async () => {
  anna = await open({ viewport: PHONE, lang: 'ru', phone: true });
  await anna.goto(k.base + '/');
  await anna.getByRole('heading', { name: 'Вход в личный кабинет' }).waitFor();
  await look(anna, 'login');
  await anna.getByRole('link', { name: 'Зарегистрировать карту' }).click();
  await anna.getByLabel('Телефон').fill('8 916 333-44-55');
  const since = smsCount();
  await anna.getByRole('button', { name: 'Получить код' }).click();
  const code = await codeFor(PHONES.anna, since);
  await anna.getByLabel('Код из сообщения').waitFor();
  // A wrong card number is refused on its field, the rest kept.
  await anna.getByLabel('Код из сообщения').fill(code);
  await anna.getByLabel('Номер карты').fill('2000000000000');
  await anna.getByLabel('ФИО').fill('Анна Смирнова');
  await anna.getByLabel('E-mail (необязательно)').fill('anna@example.com');
  await anna.getByLabel('Номер чека (необязательно)').fill('R-77');
  await anna.getByLabel('Дата рождения (необязательно)').fill('1990-05-17');
  await anna.getByLabel(/Я принимаю правила программы.*2026-01/).check();
  await look(anna, 'signup');
  await anna.getByRole('button', { name: 'Зарегистрировать карту' }).click();
  const cardField = anna.getByLabel('Номер карты');
  await invalid(cardField);
  await cardField.fill(k.cards[0]);
  await anna.getByRole('button', { name: 'Зарегистрировать карту' }).click();
  await anna.getByRole('heading', { name: 'Здравствуйте, Анна Смирнова' }).waitFor();
  await anna.getByText('Баллов пока нет: они начисляются за покупки.').waitFor();

  // A purchase at the till: 12% of parts.
  const p = await k.api('POST', '/v1/purchases', {
    card: k.cards[0], receipt: 'R-100',
    lines: [{ sku: 'OIL', category: 'parts', amount: 1250000 }],
  }, k.keys.main);
  assert.equal(p.status, 201, JSON.stringify(p.body));
  assert.equal(p.body.earned, 1500);
  await anna.reload();
  const balance = anna.getByRole('region', { name: 'Доступно баллов' });
  await balance.getByText('1 500', { exact: false }).first().waitFor();
  assert.match(await balance.textContent(), /Обычные\s*1\s500/);
  // No other currency yet: no table of currencies.
  assert.equal(await balance.getByRole('table', { name: 'Баллы по валютам' }).count(), 0);
  // A receipt in tenge earns in the card's KZT account, beside the roubles'.
  const kz = await k.api('POST', '/v1/purchases', {
    card: k.cards[0], receipt: 'KZ-100', currency: 'KZT',
    lines: [{ sku: 'OIL', category: 'parts', amount: 1250000 }],
  }, k.keys.main);
  assert.equal(kz.status, 201, JSON.stringify(kz.body));
  assert.equal(kz.body.currency, 'KZT');
  assert.equal(kz.body.earned, 300); // 12% of 12 500 tenge at 5 tenge a point
  await anna.reload();
  const currencies = anna.getByRole('table', { name: 'Баллы по валютам' });
  await currencies.waitFor();
  const rows = await currencies.getByRole('row').allTextContents();
  assert.deepEqual(rows.slice(1).map((r) => r.replace(/\s+/g, '')), ['RUB1500', 'KZT300']);
  // The big figure stays the program currency's.
  await balance.getByText('1 500', { exact: false }).first().waitFor();
  await anna.getByRole('heading', { name: 'Уровень «Silver»' }).waitFor();
  await anna.getByText('free diagnostics').waitFor();
  const barcode = anna.getByRole('img', { name: 'Штрихкод карты ' + k.cards[0] });
  await barcode.waitFor();
  assert.ok(await barcode.evaluate((img) => img.complete && img.naturalWidth > 0), 'the barcode is drawn');
  assert.ok((await barcode.boundingBox()).width >= 300, 'the barcode is large enough to scan');
  await look(anna, 'home');

  // Full screen at the till.
  await anna.getByRole('button', { name: 'Показать на кассе' }).click();
  const qr = anna.getByRole('img', { name: 'QR-код карты ' + k.cards[0] });
  await qr.waitFor();
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0));
  await look(anna, 'show');
  await anna.keyboard.press('Escape');
  await anna.getByRole('heading', { name: 'Здравствуйте, Анна Смирнова' }).waitFor();

  // The history explains every point.
  await anna.getByRole('link', { name: 'История' }).click();
  await anna.getByRole('heading', { name: 'История операций' }).waitFor();
  await anna.getByText('Начислено 12% от 12 500,00 ₽').waitFor();
  await anna.getByText('+1 500').first().waitFor();
  await look(anna, 'history');
});

let maria; // Maria's desktop page (English)

test('log in with a code; profile, preferences; block a lost card', async () => {
  maria = await open({ viewport: DESKTOP, lang: 'en' });
  await maria.goto(k.base + '/');
  await maria.getByLabel(EN.contact).fill(PHONES.maria);
  const since = smsCount();
  await maria.getByRole('button', { name: EN.get }).click();
  await maria.getByText(`If ${PHONES.maria} is registered, a code has been sent to it by SMS.`).waitFor();
  await maria.getByText(/You can get a new code in \d+ s/).waitFor();
  // A wrong code is said on the code's field.
  await maria.getByLabel(EN.code).fill('000000');
  await maria.getByRole('button', { name: 'Log in', exact: true }).click();
  await invalid(maria.getByLabel(EN.code));
  await look(maria, 'code');
  await maria.getByLabel(EN.code).fill(await codeFor(PHONES.maria, since));
  await maria.getByRole('button', { name: 'Log in', exact: true }).click();
  await maria.getByRole('heading', { name: 'Hello, Мария Иванова' }).waitFor();
  assert.equal(await maria.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');

  await maria.getByRole('link', { name: 'Profile' }).click();
  await maria.getByRole('heading', { name: 'Profile', level: 1 }).waitFor();
  // The phone is not hers to change here.
  assert.equal(await maria.getByLabel('Phone').getAttribute('readonly'), '');
  await maria.getByLabel('Full name').fill('Мария Петрова');
  await maria.getByRole('textbox', { name: 'E-mail' }).fill('not-an-email');
  await maria.getByRole('button', { name: 'Save' }).first().click();
  await invalid(maria.getByRole('textbox', { name: 'E-mail' }));
  await maria.getByRole('textbox', { name: 'E-mail' }).fill('maria@example.com');
  await maria.getByLabel('Birthday').fill('1985-04-12');
  await maria.getByRole('button', { name: 'Save' }).first().click();
  await maria.getByText('Saved.').first().waitFor();
  let c = await k.api('GET', `/v1/admin/customers/${ids.maria}`, undefined, staff);
  assert.equal(c.body.full_name, 'Мария Петрова');
  assert.equal(c.body.email, 'maria@example.com');
  assert.equal(c.body.birthday, '1985-04-12');
  // Once set, the birthday is the shop's to change.
  await maria.getByText('Your birthday is set; only the shop can change it.').waitFor();

  // Preferences: messages in English, marketing by SMS with consent.
  await maria.getByLabel('Language of messages').selectOption('en');
  await maria.getByLabel('I agree to receive news and offers').check();
  const marketing = maria.getByRole('group', { name: 'News and offers' });
  await marketing.getByLabel('SMS').check();
  await maria.getByRole('button', { name: 'Save' }).nth(1).click();
  await maria.getByText(/Consent given .* \(version cabinet-2026-01\)\./).waitFor();
  const prefs = await k.api('GET', `/v1/customers/${ids.maria}/notifications`, undefined, staff);
  assert.equal(prefs.body.language, 'en');
  assert.deepEqual(prefs.body.marketing, ['sms']);
  assert.equal(prefs.body.marketing_consent.given, true);
  await look(maria, 'profile');

  // The lost card: confirmed first, then blocked.
  await maria.getByRole('link', { name: 'Points' }).click();
  const lost = maria.getByRole('region', { name: 'Card ' + k.cards[3] });
  await lost.getByRole('button', { name: 'Block the card' }).click();
  await lost.getByText(`Block card ${k.cards[3]}?`).waitFor();
  await look(maria, 'block-confirm');
  await lost.getByRole('button', { name: 'Yes, block it' }).click();
  await maria.getByRole('region', { name: 'Card ' + k.cards[3] }).getByText('Blocked', { exact: true }).waitFor();
  c = await k.api('GET', `/v1/admin/cards/${k.cards[3]}`, undefined, staff);
  assert.equal(c.body.state, 'blocked');
  c = await k.api('GET', `/v1/admin/cards/${k.cards[1]}`, undefined, staff);
  assert.equal(c.body.state, 'active', 'her other card still works');
});

test('family: invite by phone, accept in another browser, who may spend, leave', async () => {
  await maria.getByRole('link', { name: 'Family' }).click();
  await maria.getByRole('heading', { name: 'You are in no family yet' }).waitFor();
  await maria.getByRole('button', { name: 'Create a family' }).click();
  await maria.getByText('Your family is created: invite your people by their phone.').waitFor();
  await maria.getByLabel('Their phone').fill('+7 999');
  await maria.getByRole('button', { name: 'Invite', exact: true }).click();
  await invalid(maria.getByLabel('Their phone'));
  await maria.getByLabel('Their phone').fill('8 916 222-33-44');
  await maria.getByRole('button', { name: 'Invite', exact: true }).click();
  await maria.getByText('Invitation sent.').waitFor();
  await maria.getByText(PHONES.xss).waitFor();

  // The invitee, on a phone, in Russian: their name shows as text.
  const other = await open({ viewport: PHONE, lang: 'ru', phone: true });
  await logIn(other, PHONES.xss, RU);
  await other.getByRole('heading', { name: 'Здравствуйте, ' + XSS }).waitFor();
  assert.equal(await other.locator('img[src="x"]').count(), 0, 'the name is no element');
  await other.getByRole('link', { name: 'Семья' }).click();
  await other.getByText('Мария Петрова приглашает вас в семью').waitFor();
  await look(other, 'family-invited');
  await other.getByRole('button', { name: 'Принять' }).click();
  await other.getByText('Вы вступили в семью: ваши баллы перенесены на общий счёт.').waitFor();
  await other.getByText('Вы участник семьи.').waitFor();

  // The owner sees the new member by name (as text) and lets them spend.
  await maria.reload();
  const members = maria.getByRole('region', { name: 'Members' });
  await members.getByText(XSS, { exact: true }).waitFor();
  assert.equal(await maria.locator('img[src="x"]').count(), 0);
  await members.getByRole('button', { name: `Let spend (${XSS})` }).click();
  await members.getByRole('button', { name: `Stop spending (${XSS})` }).waitFor();
  const fam = await k.api('GET', '/v1/admin/customers/' + ids.xss, undefined, staff);
  assert.equal(fam.body.family.may_spend, true);
  await look(maria, 'family');

  // The member leaves.
  await other.reload();
  await other.getByRole('button', { name: 'Выйти из семьи' }).click();
  await other.getByRole('button', { name: 'Да' }).click();
  await other.getByText('Вы вышли из семьи.').waitFor();
  await other.getByRole('heading', { name: 'Вы пока не в семье' }).waitFor();
  const left = await k.api('GET', '/v1/admin/customers/' + ids.xss, undefined, staff);
  assert.equal(left.body.family, null);
  await other.context().close();
});

test('transfer points within the limits, errors on the fields', async () => {
  await anna.getByRole('link', { name: 'Перевод' }).click();
  await anna.getByRole('heading', { name: 'Перевод баллов' }).waitFor();
  await anna.getByText('Лимит на один перевод: 1 000 баллов').waitFor();
  // Nobody has this phone.
  await anna.getByLabel('Телефон получателя').fill('+7 916 000-00-01');
  await anna.getByLabel('Сколько баллов').fill('300');
  await anna.getByRole('button', { name: 'Перевести 300 баллов' }).click();
  await invalid(anna.getByLabel('Телефон получателя'));
  // Over the program's limit: said on the points.
  await anna.getByLabel('Телефон получателя').fill(PHONES.xss);
  await anna.getByLabel('Сколько баллов').fill('1200');
  await anna.getByRole('button', { name: 'Перевести 1 200 баллов' }).click();
  await invalid(anna.getByLabel('Сколько баллов'));
  await look(anna, 'transfer-error');
  await anna.getByLabel('Сколько баллов').fill('300');
  await anna.getByRole('button', { name: 'Перевести 300 баллов' }).click();
  await anna.getByText(`Переведено получателю ${PHONES.xss}: 300 баллов.`).waitFor();
  await anna.getByText('Ваш баланс: 1 200 баллов.', { exact: false }).waitFor();
  const to = await k.api('GET', '/v1/admin/customers/' + ids.xss, undefined, staff);
  assert.equal(to.body.balance, 300);
  // By card number too.
  await anna.getByLabel('По номеру карты').check();
  await anna.getByLabel('Номер карты получателя').fill(k.cards[1]);
  await anna.getByLabel('Сколько баллов').fill('100');
  await anna.getByRole('button', { name: 'Перевести 100 баллов' }).click();
  await anna.getByText(`Переведено получателю ${k.cards[1]}: 100 баллов.`).waitFor();
  await look(anna, 'transfer');
  // The history says where the points went.
  await anna.getByRole('link', { name: 'История' }).click();
  await anna.getByText('Переданы другому участнику').first().waitFor();
});

test('download my data, then erase it', async () => {
  await anna.getByRole('link', { name: 'Профиль' }).click();
  const [download] = await Promise.all([
    anna.waitForEvent('download'),
    anna.getByRole('link', { name: 'Скачать мои данные' }).click(),
  ]);
  const file = await download.path();
  const data = JSON.parse(readFileSync(file, 'utf8'));
  assert.match(JSON.stringify(data), /Анна Смирнова/);
  assert.match(JSON.stringify(data), /anna@example\.com/);
  await anna.getByRole('button', { name: 'Удалить мои данные…' }).click();
  const erase = anna.getByRole('button', { name: 'Удалить навсегда' });
  assert.equal(await erase.isDisabled(), true, 'not before the word is typed');
  await anna.getByLabel('Чтобы подтвердить, введите слово УДАЛИТЬ').fill('удалить');
  await look(anna, 'erase');
  await erase.click();
  await anna.getByText('Ваши данные удалены. Спасибо, что были с нами.').waitFor();
  await anna.getByRole('heading', { name: 'Вход в личный кабинет' }).waitFor();
  const search = await k.api('POST', '/v1/admin/customers/search', { phone: PHONES.anna }, staff);
  assert.deepEqual(search.body.customers, []);
  const card = await k.api('GET', `/v1/admin/cards/${k.cards[0]}`, undefined, staff);
  assert.equal(card.body.state, 'blocked');
  // The session is over: the cabinet's routes say 401.
  const me = await anna.evaluate(() => fetch('/v1/me').then((r) => r.status));
  assert.equal(me, 401);
});
