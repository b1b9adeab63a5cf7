// catalog.test.mjs: the rewards catalog (docs/marketing.md "Rewards
// catalog") in a real browser against a real `kopilka serve`: a marketer
// adds an item in the back office, uploads its image (a wrong file refused
// on the page) and sets its stock; the customer sees it in the cabinet with
// its image, orders it for their card at a store, sees the order and
// cancels it (points and stock back), orders again; the till orders for the
// card in hand and hands an order over with its co-payment; the back office
// moves an order to ready and sees every state. Each view passes axe and is
// photographed, in Russian and English; nothing is logged as a problem.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startKopilka, launch, newPage, assertClean, checkA11y, snap, waitFor, officePage, PASSWORD, TILL, PHONE,
} from './harness.mjs';

let k, browser, staff, key, pngPath, txtPath;
const PHONE_NO = '+79165556677';

/* A real 8×8 PNG (a red square), so the browser shows it. */
function png() {
  const crc = (buf) => {
    let c = ~0;
    for (const b of buf) {
      c ^= b;
      for (let i = 0; i < 8; i++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(8, 0);
  ihdr.writeUInt32BE(8, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const rows = Buffer.alloc(8 * (1 + 8 * 3));
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) rows[y * 25 + 1 + x * 3] = 220;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

before(async () => {
  k = await startKopilka({ staff: { anna: 'admin', mila: 'marketer', kate: 'cashier' }, cards: 6 });
  key = k.keys.main;
  staff = await k.login('anna');
  const reg = await k.api('POST', '/v1/customers', {
    card: k.cards[0], full_name: 'Анна Смирнова', phone: PHONE_NO, consent: { given: true, text_version: '2026-01' },
  }, staff);
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  for (const [i, card] of k.cards.slice(0, 2).entries()) {
    const r = await k.api('POST', '/v1/admin/adjustments', { card, points: 1000, reason: 'seed', key: 'seed-' + i }, staff);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  pngPath = join(k.dir, 'mug.png');
  writeFileSync(pngPath, png());
  txtPath = join(k.dir, 'notes.txt');
  writeFileSync(txtPath, 'not an image');
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

async function look(page, name, widths) {
  await page.waitForLoadState('networkidle');
  await checkA11y(page, name);
  await snap(page, 'catalog-' + name, widths);
}

test('back office: an item with its image and stock, in English', async () => {
  const page = await officePage(browser, k, '/catalog', { login: 'mila' });
  await page.getByRole('heading', { name: 'Rewards catalog', level: 1 }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Red mug');
  await page.getByLabel('Price in points').fill('300');
  await page.getByLabel('Co-payment, ₽').fill('150');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.getByText('Item “Red mug” added.').waitFor();
  await page.getByText('Edit: Red mug').click();
  // A file that is not an image is refused by the page before it is sent.
  await page.getByLabel('Upload an image').setInputFiles(txtPath);
  await page.getByText('A PNG, JPEG or WebP file, please.').waitFor();
  await page.getByLabel('Upload an image').setInputFiles(pngPath);
  await page.getByText('Image uploaded.').waitFor();
  await page.getByRole('img', { name: 'Image of “Red mug”' }).waitFor();
  const details = page.locator('details', { hasText: 'Edit: Red mug' });
  if (!(await details.evaluate((d) => d.open))) await page.getByText('Edit: Red mug').click();
  const stock = page.getByRole('form', { name: 'Stock of “Red mug”' });
  await stock.getByLabel('Store').fill('main');
  await stock.getByLabel('Left').fill('2');
  await stock.getByRole('button', { name: 'Save the stock' }).click();
  await page.getByRole('cell', { name: 'main: 2' }).waitFor();
  await look(page, 'office-items');
  assertClean(page);
  await page.context().close();
  // A cashier has no catalog section.
  const cashier = await officePage(browser, k, '/', { login: 'kate' });
  assert.equal(await cashier.getByRole('link', { name: 'Rewards catalog' }).count(), 0);
  await cashier.context().close();
});

test('cabinet: order, see it, cancel it, order again (Russian, phone)', async () => {
  const page = await newPage(browser, { viewport: PHONE, lang: 'ru', phone: true });
  await page.goto(k.base + '/');
  await page.getByLabel('Телефон или e-mail').fill(PHONE_NO);
  const since = k.sms.received().length;
  await page.getByRole('button', { name: 'Получить код' }).click();
  /* The code of the first SMS to the phone after `since` (by its text). */
  const code = await waitFor('a login code', () => {
    for (const m of k.sms.received().slice(since)) {
      const f = m.fields || {};
      const c = f.to === PHONE_NO && String(f.text || '').match(/\b(\d{6})\b/);
      if (c) return c[1];
    }
    return null;
  });
  await page.getByLabel('Код из сообщения').fill(code);
  await page.getByRole('button', { name: 'Войти', exact: true }).click();
  await page.getByRole('navigation').waitFor();
  await page.getByRole('link', { name: 'Подарки' }).click();
  await page.getByRole('heading', { name: 'Подарки за баллы' }).waitFor();
  await page.getByRole('heading', { name: 'Red mug' }).waitFor();
  await page.getByLabel('Где забрать').waitFor();
  assert.match(await page.getByLabel('Где забрать').inputValue(), /main/);
  await look(page, 'cabinet', [PHONE]);
  await page.getByRole('button', { name: 'Заказать «Red mug»' }).click();
  await page.getByText(/Заказ \d+ оформлен: «Red mug», списано 300/).waitFor();
  await page.getByText('оформлен', { exact: true }).waitFor();
  const cancel = page.getByRole('button', { name: /Отменить заказ \d+ «Red mug»/ });
  await cancel.click();
  await page.getByText(/Заказ \d+ отменён: баллы возвращены/).waitFor();
  await page.getByText('отменён', { exact: true }).waitFor();
  const card = (await k.api('GET', '/v1/cards/' + k.cards[0], undefined, key)).body;
  assert.equal(card.balance, 1000);
  await page.getByRole('button', { name: 'Заказать «Red mug»' }).click();
  await page.getByText(/Заказ \d+ оформлен/).waitFor();
  await look(page, 'cabinet-ordered', [PHONE]);
  assertClean(page);
  await page.context().close();
});

test('till: order for the card in hand, hand over with the co-payment (English)', async () => {
  const page = await newPage(browser, { viewport: TILL, lang: 'en' });
  await page.goto(k.base + '/till');
  await page.evaluate((p) => localStorage.setItem('kopilka.till.pairing', JSON.stringify(p)),
    { key, store: 'main', terminal: null, tag: 'gifts' });
  await page.reload();
  await page.getByLabel('Login').fill('kate');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('Cashier: kate').waitFor();
  await page.getByRole('link', { name: /Gifts/ }).click();
  await page.getByRole('heading', { name: 'Gifts for points' }).waitFor();
  await page.getByLabel('Card number').fill(k.cards[1]);
  await page.getByRole('button', { name: /Find the card/ }).click();
  await page.getByText(`Card ${k.cards[1]}: 1,000 points.`).waitFor();
  await page.getByRole('button', { name: 'Order “Red mug”' }).click();
  await page.getByText(/Order \d+ placed: “Red mug”, 300 taken\. Balance 700\./).waitFor();
  // The mug was the last one: the cabinet's order took the other.
  await page.getByText('0 left').waitFor();
  await look(page, 'till', [TILL]);
  await page.getByRole('button', { name: /Hand over order \d+/ }).first().click();
  await page.getByText(/Order \d+ handed over: “Red mug”\. Take the co-payment of/).waitFor();
  assertClean(page);
  await page.context().close();
});

test('back office: the orders and their states (Russian)', async () => {
  const page = await officePage(browser, k, '/catalog', { lang: 'ru', login: 'anna' });
  await page.getByRole('heading', { name: 'Каталог подарков', level: 1 }).waitFor();
  await page.getByRole('cell', { name: 'выдан', exact: true }).waitFor();
  await page.getByRole('cell', { name: 'отменён', exact: true }).waitFor();
  const ready = page.getByRole('button', { name: /^Готов к выдаче \d+$/ });
  await ready.first().click();
  await page.getByText(/Заказ \d+: готов к выдаче\./).waitFor();
  await page.getByLabel('Состояние').selectOption('ready');
  await waitFor('the ready orders only', async () => (await page.getByRole('cell', { name: 'выдан', exact: true }).count()) === 0);
  await look(page, 'office-orders');
  k.cli(['verify', k.db]); // exits non-zero (and throws) when the ledger does not hold
  assertClean(page);
  await page.context().close();
});
