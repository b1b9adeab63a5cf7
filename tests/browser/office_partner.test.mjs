// office_partner.test.mjs: a coalition partner's own view of the back
// office (docs/coalition.md "Partner staff and isolation", docs/pages.md
// "Partner's view"), against a real `kopilka serve` running the coalition
// example (fuel, wash, cafe, bank) at 20 November 2026: purchases at WASH-1
// and FUEL-1 through the till API, November closed with the CLI at 2
// December; then the wash's staff member `wash1` logs in and sees only the
// partner's sections (never the operator's), the wash's operations and
// never the fuel chain's, its rule, its own statement laid out to print and
// as CSV, in English and Russian; the bank's staff member credits
// co-branded card transactions pasted as CSV and sees the answer per line.
// axe on each view, screenshots at desktop and phone widths.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SOURCE, startKopilka, launch, officePage, assertClean, checkA11y, snap } from './harness.mjs';

let k, browser;

before(async () => {
  k = await startKopilka({
    program: join(SOURCE, 'examples/coalition.json'), staff: { anna: 'admin' },
    stores: ['WASH-1', 'FUEL-1'], cards: 3, notify: false,
    serveArgs: ['--now', '2026-11-20T10:00:00Z'],
  });
  const pw = join(k.dir, 'password');
  k.cli(['staff', 'add', k.db, '--login', 'wash1', '--role', 'partner', '--partner', 'wash', '--password-file', pw]);
  k.cli(['staff', 'add', k.db, '--login', 'bank1', '--role', 'partner', '--partner', 'bank', '--password-file', pw]);
  browser = await launch();
  const buy = async (store, card, receipt, amount) => {
    const r = await k.api('POST', '/v1/purchases', { card, receipt, lines: [{ sku: 'X', category: 'misc', amount }] }, k.keys[store]);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  await buy('WASH-1', k.cards[0], 'W-1', 120000);
  await buy('WASH-1', k.cards[1], 'W-2', 80000);
  await buy('FUEL-1', k.cards[0], 'F-1', 300000);
  await buy('FUEL-1', k.cards[2], 'F-2', 450000);
  k.cli(['settlement', 'close', k.db, '--period', '2026-11', '--now', '2026-12-02T09:00:00Z']);
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

const nav = (page, lang = 'en') => page.getByRole('navigation', { name: lang === 'ru' ? 'Разделы' : 'Sections' });

test('the wash sees only its own sections, operations, rules and statement', async () => {
  const page = await officePage(browser, k, '/', { login: 'wash1' });
  const links = await nav(page).getByRole('link').allTextContents();
  assert.deepEqual(links, ['Partner', 'Operations', 'Rules', 'Statements']);
  await page.getByRole('heading', { name: 'Coalition partner', level: 1 }).waitFor();
  await page.getByRole('heading', { name: 'Car wash', level: 2 }).waitFor();
  await page.getByRole('cell', { name: 'WASH-*' }).waitFor();
  await checkA11y(page, 'partner about');
  await snap(page, 'office-partner-about');

  // An operator's section by its address shows the partner's first page.
  await page.goto(k.base + '/office#/settlement');
  await page.getByRole('heading', { name: 'Coalition partner', level: 1 }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Coalition settlement' }).count(), 0);

  await nav(page).getByRole('link', { name: 'Operations' }).click();
  const ops = page.getByRole('main').getByRole('table');
  await ops.getByRole('cell', { name: 'W-1' }).waitFor();
  const stores = await ops.locator('tbody tr td:nth-child(3)').allTextContents();
  assert.deepEqual(stores, ['WASH-1', 'WASH-1']);
  assert.equal(await page.getByText('FUEL-1').count(), 0);
  const cards = await ops.locator('tbody tr td:nth-child(5)').allTextContents();
  for (const c of cards) assert.match(c, /^\*+\d{4}$/);
  await ops.getByRole('row').filter({ hasText: 'W-1' }).getByText(/^RUB\s1,200\.00$/).waitFor();
  await checkA11y(page, 'partner operations');
  await snap(page, 'office-partner-operations');
  // A period without operations.
  await page.getByLabel('From', { exact: true }).fill('2026-10-01');
  await page.getByLabel('To', { exact: true }).fill('2026-10-31');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByText('No operations in these dates.').waitFor();

  await nav(page).getByRole('link', { name: 'Rules' }).click();
  const rules = page.getByRole('main').getByRole('table');
  await rules.getByRole('cell', { name: 'wash-5' }).waitFor();
  assert.equal(await rules.locator('tbody tr').count(), 1);
  await rules.getByRole('row').filter({ hasText: 'wash-5' }).getByText('at your stores').waitFor();
  await checkA11y(page, 'partner rules');
  await snap(page, 'office-partner-rules');

  await nav(page).getByRole('link', { name: 'Statements' }).click();
  const list = page.getByRole('main').getByRole('table');
  await list.getByRole('cell', { name: '2026-11' }).waitFor();
  assert.equal(await list.locator('tbody tr').count(), 1);
  const mine = await k.api('GET', '/v1/partner/statements', undefined, await k.login('wash1'));
  assert.equal(mine.status, 200);
  const n = mine.body.statements[0].number;
  assert.equal(mine.body.statements[0].party, 'wash');
  const csv = await list.getByRole('link', { name: `Download CSV ${n}` }).getAttribute('href');
  assert.match(decodeURIComponent(csv), /^data:text\/csv;charset=utf-8,figure,value\nnumber,\d+\nperiod,2026-11\nparty,wash\n/);
  await checkA11y(page, 'partner statements');
  await page.getByRole('button', { name: `Open statement No. ${n}` }).click();
  const st = page.locator('section.printable');
  await st.getByRole('heading', { name: `Statement No. ${n}` }).waitFor();
  await st.getByRole('row').filter({ hasText: 'Points issued' }).waitFor();
  await checkA11y(page, 'partner statement');
  await snap(page, 'office-partner-statement');
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.getByRole('heading', { name: 'Your statements', level: 1 }).isVisible(), false);
  assert.equal(await st.isVisible(), true);
  await page.emulateMedia({ media: 'screen' });
  assertClean(page);
  await page.context().close();
});

test('in Russian, with money in the Russian format', async () => {
  const page = await officePage(browser, k, '/operations', { login: 'wash1', lang: 'ru' });
  const links = await nav(page, 'ru').getByRole('link').allTextContents();
  assert.deepEqual(links, ['Партнёр', 'Операции', 'Правила', 'Выписки']);
  await page.getByRole('heading', { name: 'Операции в ваших магазинах', level: 1 }).waitFor();
  const ops = page.getByRole('main').getByRole('table');
  await ops.getByRole('row').filter({ hasText: 'W-1' }).getByText(/^1\s200,00\s₽$/).waitFor();
  await checkA11y(page, 'partner operations ru');
  await nav(page, 'ru').getByRole('link', { name: 'Правила' }).click();
  await page.getByRole('main').getByRole('table').getByText('в ваших магазинах').waitFor();
  await snap(page, 'office-partner-rules-ru');
  assertClean(page);
  await page.context().close();
});

test('the bank credits card transactions pasted as CSV', async () => {
  const page = await officePage(browser, k, '/card-transactions', { login: 'bank1' });
  const links = await nav(page).getByRole('link').allTextContents();
  assert.deepEqual(links, ['Partner', 'Operations', 'Rules', 'Statements', 'Card transactions']);
  await page.getByRole('heading', { name: 'Co-branded card transactions', level: 1 }).waitFor();
  const text = 'id,at,card,amount,currency,merchant\n' +
    `T-1,2026-11-20T09:00:00Z,${k.cards[0]},150000,RUB,"Cafe, Main St"\n` +
    `T-2,2026-11-20T09:30:00Z,${k.cards[1]},5000,RUB,Shop\n`;
  await page.getByLabel('Transactions CSV').fill('id,at,card\n1,2,3\n');
  await page.getByRole('button', { name: 'Credit the cashback' }).click();
  await page.getByText('Line 1: the first line must be').waitFor();
  await page.getByLabel('Transactions CSV').fill(text);
  await page.getByRole('button', { name: 'Credit the cashback' }).click();
  const res = page.getByRole('main').getByRole('table');
  await res.getByRole('row').filter({ hasText: 'T-1' }).getByText('Cafe, Main St').waitFor();
  await page.getByText('Points credited: 15.').waitFor();
  assert.deepEqual(await res.locator('tbody tr td:nth-child(5)').allTextContents(), ['15', '0']);
  await checkA11y(page, 'bank card transactions');
  await snap(page, 'office-partner-card');
  assert.deepEqual(await res.locator('tbody tr td:nth-child(6)').allTextContents(), ['no', 'no']);
  // The same again credits nothing: T-1 is replayed (T-2, under one point, wrote nothing).
  await page.getByRole('button', { name: 'Credit the cashback' }).click();
  await page.getByText('Points credited: 0.').waitFor();
  assert.deepEqual(await res.locator('tbody tr td:nth-child(6)').allTextContents(), ['yes', 'no']);
  assertClean(page);
  await page.context().close();
});

test('the operator\'s admin still has the operator\'s sections', async () => {
  const page = await officePage(browser, k, '/settlement', { login: 'anna' });
  await page.getByRole('heading', { name: 'Coalition settlement', level: 1 }).waitFor();
  assert.equal(await nav(page).getByRole('link', { name: 'Card transactions' }).count(), 0);
  await page.context().close();
});
