// office_settlement.test.mjs: a coalition's settlement in the browser
// (docs/coalition.md "Periods and statements"), against a real `kopilka
// serve` whose clock is 2 December 2026: a cashier does not see the
// section; a manager reads November's open statements and matrix and has
// no Close button; the admin closes November after a confirmation, sees
// the numbered statements and the matrix, and opens one statement laid out
// to print (and the print media hides the rest). The entries a coalition's
// operations write are put into the database file here (a few rows of
// settle_entries, as the design's table gives them), so the page has
// figures to show whichever operations write them. axe on each view,
// screenshots at desktop and phone widths, and one of the print layout.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ARTIFACTS, PYTHON3, startKopilka, launch, officePage, assertClean, checkA11y, snap } from './harness.mjs';

let k, browser;

const ROWS = [
  // op, kind, payer, payee, points, amount (kopecks); 1 issue, 2 burn, 4 promo, 5 fee
  [1, 1, 'fuel', 'fuel', 120, 0],
  [1, 5, 'fuel', '', 0, 50],
  [2, 2, 'fuel', 'wash', 30, 3000],
  [2, 1, 'wash', 'wash', 20, 0],
  [3, 2, 'wash', '', 10, 1000],
  [4, 4, 'fuel', 'wash', 5, 500],
];

before(async () => {
  const base = JSON.parse(execFileSync('cat', [join(process.env.KOPILKA_SOURCE || '.', 'examples/autoservice-case1.json')]));
  const program = {
    ...base,
    partners: [
      { code: 'fuel', name: 'Fuel chain', stores: ['FUEL-*'], fees: { per_operation: 50 } },
      { code: 'wash', name: 'Car wash', stores: ['WASH-*'] },
    ],
  };
  k = await startKopilka({
    program, staff: { anna: 'admin', mila: 'manager', ivan: 'cashier' }, cards: 2,
    serveArgs: ['--now', '2026-12-02T09:00:00Z'], notify: false,
  });
  browser = await launch();
  const at = Date.parse('2026-11-20T10:00:00Z') / 1000;
  const sql = ROWS.map(([op, kind, payer, payee, pts, amt], i) =>
    `INSERT INTO settle_entries(op_id, seq, booked_at, period, currency, kind, payer, payee, points, amount_minor) ` +
    `VALUES (${op}, ${i}, ${at}, 202611, 'RUB', ${kind}, '${payer}', '${payee}', ${pts}, ${amt})`).join(';');
  execFileSync(PYTHON3, ['-c',
    'import sqlite3,sys\nd=sqlite3.connect(sys.argv[1],timeout=10)\nd.executescript(sys.argv[2])\nd.commit()', k.db, sql]);
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

test('a cashier has no Settlement section', async () => {
  const page = await officePage(browser, k, '/', { login: 'ivan' });
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  assert.equal(await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Settlement' }).count(), 0);
  await page.context().close();
});

test('a manager reads the open period and may not close it', async () => {
  const page = await officePage(browser, k, '/settlement', { login: 'mila' });
  await page.getByRole('heading', { name: 'Coalition settlement', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Open period 2026-11' }).click();
  await page.getByText('The period is open: the figures are computed now').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Close period 2026-11' }).count(), 0);
  const wash = page.getByRole('row').filter({ hasText: 'wash' }).filter({ hasText: 'RUB' }).first();
  await wash.getByText(/^\+.*25\.00$/).waitFor();
  await checkA11y(page, 'settlement open period');
  assertClean(page);
  await page.context().close();
});

test('the admin closes November and prints a statement', async () => {
  const page = await officePage(browser, k, '/settlement', { login: 'anna' });
  await page.getByRole('heading', { name: 'Coalition settlement', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Close period 2026-11' }).click();
  const ask = page.getByRole('alertdialog');
  await ask.getByText('Close period 2026-11? Its statements will be numbered').waitFor();
  await checkA11y(page, 'settlement confirm');
  await ask.getByRole('button', { name: 'Yes, close' }).click();
  await page.getByText('Period 2026-11 is closed: statements 1–3.').waitFor();
  await page.getByText(/^Closed .* \(staff:anna\)\. Statements 1–3\.$/).waitFor();
  const api = await k.api('GET', '/v1/admin/settlement/periods/2026-11', undefined, await k.login('anna'));
  assert.equal(api.body.state, 'closed');
  assert.deepEqual(api.body.statements.map((s) => [s.number, s.party, s.net_position_minor]),
    [[1, 'operator', 1050], [2, 'fuel', -3550], [3, 'wash', 2500]]);
  // The matrix: fuel owes wash 35.00 (30 points and a promotion of 5).
  const matrix = page.getByRole('table', { name: 'Matrix, RUB' });
  await matrix.getByRole('row').filter({ hasText: 'fuel' }).getByText(/35\.00/).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Statements (CSV)' }).getAttribute('href'), '/v1/admin/settlement/periods/2026-11?format=csv');
  await snap(page, 'office-settlement');
  await page.getByRole('button', { name: 'Statement of fuel RUB' }).click();
  const st = page.locator('section.printable');
  await st.getByRole('heading', { name: 'Statement No. 2' }).waitFor();
  await st.getByRole('row').filter({ hasText: 'Net position' }).getByText(/35\.50/).waitFor();
  await checkA11y(page, 'settlement statement');
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.getByRole('heading', { name: 'Coalition settlement', level: 1 }).isVisible(), false);
  assert.equal(await st.isVisible(), true);
  await page.screenshot({ path: join(ARTIFACTS, 'office-settlement-print.png'), fullPage: true });
  await page.emulateMedia({ media: 'screen' });
  assertClean(page);
  await page.context().close();
});
