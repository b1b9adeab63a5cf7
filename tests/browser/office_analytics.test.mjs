// office_analytics.test.mjs: the back office's reports (#/reports) and
// program model (#/simulate) in the browser, against a real `kopilka
// serve` for the login, the sections each role sees, the running program,
// the points report (GET /v1/admin/reports/points, JSON and its CSV: the
// page's figures and liability schedule are the API's, on purchases at two
// stores) and a simulation run (POST/GET /v1/admin/simulations: the
// page's totals and rules are the run's; a refusal is shown at its field).
// A run whose progress is seen over several polls is answered by the test
// itself (page.route) in the route's documented shape, to prove the
// program files and their errors, the run's body, the progress and the
// results shown. The members report (GET /v1/admin/reports/members, with
// sales imported and a till's sale without a card): the four figures are
// the API's, beside their seeds' claims, its bars, a tier, the CSV.
// The customers report: the page's figures are the API's
// on that story, and an answer made by the test draws the bars, the R x F
// heat map, the cohort triangle and the before/after bars.
// axe on each view, screenshots at desktop and phone widths, Russian and
// English.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startKopilka, launch, officePage, assertClean, checkA11y, snap, waitFor, PHONE, programDay, programMonthStart } from './harness.mjs';

let k, browser, admin;

// Days of the program's calendar, as the page (its browser in the program's zone) picks them.
const day = (d) => programDay(d);
const monthStart = (back) => programMonthStart(back);

before(async () => {
  k = await startKopilka({ staff: { anna: 'admin', olga: 'auditor', ivan: 'cashier' }, stores: ['main', 'north'], notify: false, cards: 3 });
  browser = await launch();
  admin = await k.login('anna');
  for (const [i, phone] of [[0, '+7 916 765-43-21'], [1, '+7 916 765-43-22']]) {
    const r = await k.api('POST', '/v1/customers', {
      card: k.cards[i], full_name: `Customer ${i}`, phone,
      consent: { given: true, text_version: '2026-01' },
    }, k.keys.main);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  const buy = async (store, card, receipt, lines, burn = 0) => {
    const r = await k.api('POST', '/v1/purchases', { card, receipt, burn, lines }, k.keys[store]);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  await buy('main', k.cards[0], 'M-1', [{ sku: 'OIL', category: 'parts', amount: 1250000 }]);
  await buy('main', k.cards[0], 'M-2', [{ sku: 'LABOR', category: 'labor', amount: 300000 }], 100);
  await buy('north', k.cards[1], 'N-1', [{ sku: 'OIL', category: 'parts', amount: 500000 }]);
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

const office = (path, opts = {}) => officePage(browser, k, path, { login: 'anna', ...opts });

async function figure(page, label) {
  const card = page.locator('.figures .card').filter({ has: page.locator('.figure-label', { hasText: new RegExp(`^${label}$`) }) });
  return (await card.locator('.figure').textContent()).trim();
}
const rub = (minor, l = 'en-GB') => new Intl.NumberFormat(l, { style: 'currency', currency: 'RUB' }).format(minor / 100);
const en = (n) => new Intl.NumberFormat('en-GB', { maximumFractionDigits: 0 }).format(n);
const pct = (v, l = 'en-GB') => new Intl.NumberFormat(l, { style: 'percent', maximumFractionDigits: 2 }).format(v);

test('the sections a role sees: reports for the auditor, neither for a cashier', async () => {
  const olga = await office('/', { login: 'olga' });
  const nav = olga.getByRole('navigation', { name: 'Sections' });
  await nav.getByRole('link', { name: 'Reports' }).waitFor();
  await olga.context().close();
  const ivan = await office('/', { login: 'ivan' });
  const inav = ivan.getByRole('navigation', { name: 'Sections' });
  assert.equal(await inav.getByRole('link', { name: 'Reports' }).count(), 0);
  assert.equal(await inav.getByRole('link', { name: 'Program model' }).count(), 0);
  await ivan.context().close();
});

test('reports: the points report is the API\'s, per store, with its CSV', async () => {
  const page = await office('/reports?r=points');
  const asked = [];
  page.on('request', (r) => r.url().includes('/v1/admin/reports/') && asked.push(new URL(r.url())));
  await page.getByRole('heading', { name: 'Reports', level: 1 }).waitFor();
  await page.getByRole('heading', { name: /^Points ·.*every store$/ }).waitFor();
  await page.getByLabel('Store', { exact: true }).fill('north');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByRole('heading', { name: /^Points ·.*store north$/ }).waitFor();
  // The heading names the store at once; its request may be a moment later.
  await waitFor('the store\'s request', async () => asked.some((u) => u.searchParams.get('store') === 'north'), 10000);
  const last = asked[asked.length - 1];
  assert.equal(last.pathname, '/v1/admin/reports/points');
  assert.equal(last.searchParams.get('store'), 'north');
  assert.equal(last.searchParams.get('from'), monthStart(11));
  assert.equal(last.searchParams.get('tier'), null);
  assert.equal(await page.getByLabel('Tier', { exact: true }).count(), 0, 'the points report has no tier');
  const api = (await k.api('GET', `/v1/admin/reports/points?from=${monthStart(11)}&to=${day(new Date())}&store=north`, undefined, admin)).body;
  assert.equal(api.issued > 0, true, JSON.stringify(api));
  // The heading names the store at once; the figures follow their answer.
  await waitFor('the north store\'s figures', async () => (await figure(page, 'Issued')) === en(api.issued), 10000);
  assert.equal(await figure(page, 'Issued'), en(api.issued));
  assert.equal(await figure(page, 'Burnt'), en(api.burnt));
  assert.equal(await figure(page, 'Outstanding'), en(api.outstanding));
  assert.equal(await figure(page, 'Liability'), rub(api.liability_minor));
  assert.equal(await figure(page, 'Redemption rate'), pct(api.redemption_rate));
  assert.equal(await figure(page, 'Program cost'), pct(api.cost_share));
  const kinds = page.getByRole('table', { name: 'Liability by kind of points and expiry month' });
  assert.equal(await kinds.locator('tbody tr').count(), Math.max(1, api.schedule.length));
  for (const row of api.schedule) {
    const cells = kinds.locator('tbody tr').filter({ has: page.getByRole('cell', { name: row.kind, exact: true }) });
    await cells.getByRole('cell', { name: en(row.points), exact: true }).first().waitFor();
    if (row.month === 'never') await cells.getByRole('cell', { name: 'never expire' }).first().waitFor();
  }
  const pcsv = page.getByRole('link', { name: 'Download CSV: Points' });
  const phref = new URL(await pcsv.getAttribute('href'), k.base);
  assert.equal(phref.searchParams.get('tier'), null);
  const got = await page.request.get(phref.toString());
  assert.equal(got.status(), 200);
  assert.match(await got.text(), new RegExp(`issued,,,${api.issued}\r\n`));
  await checkA11y(page, 'the points report');
  await snap(page, 'office-reports-points');

  assertClean(page);
  await page.context().close();
});

test('the points report in Russian on a phone', async () => {
  const page = await office('/reports?r=points', { lang: 'ru', viewport: PHONE });
  await page.getByRole('heading', { name: 'Отчёты', level: 1 }).waitFor();
  await page.locator('.figures').first().waitFor();
  const api = (await k.api('GET', `/v1/admin/reports/points?from=${monthStart(11)}&to=${day(new Date())}`, undefined, admin)).body;
  assert.equal(await figure(page, 'Доля списанных'), pct(api.redemption_rate, 'ru-RU'));
  assert.equal(await figure(page, 'Обязательства'), rub(api.liability_minor, 'ru-RU'));
  await page.getByRole('link', { name: 'Скачать CSV: Баллы' }).waitFor();
  await checkA11y(page, 'the points report in Russian');
  await snap(page, 'office-reports-points-ru', [PHONE]);
  assertClean(page);
  await page.context().close();
});

/* The customers report (customers_report.jsx). A real answer first: the
 * view shows the API's figures for the story of before(); then an answer
 * made here (page.route) in the route's documented shape, rich enough to
 * prove the bars, the heat map's cells and names, the cohort triangle and
 * the before/after bars, in English and Russian. */
const CUSTOMERS = {
  from: '2026-01-01', to: '2026-04-30', store: null, tier: null,
  tiers: {
    accounts: [{ tier: 'Silver', accounts: 120 }, { tier: 'Gold', accounts: 30 }, { tier: '', accounts: 50 }],
    moves: [{ from: '', to: 'Silver', direction: 'up', moves: 40 }, { from: 'Silver', to: 'Gold', direction: 'up', moves: 12 },
      { from: 'Gold', to: 'Silver', direction: 'down', moves: 3 }],
    up: 52, down: 3,
  },
  rfm: {
    members: 25,
    cutoffs: { recency_days: [90, 60, 30, 10], frequency: [1, 2, 3, 5], monetary_minor: [100000, 250000, 400000, 800000] },
    segments: ['champions', 'loyal', 'potential_loyalists', 'new', 'promising', 'need_attention', 'about_to_sleep',
      'at_risk', 'cant_lose', 'hibernating', 'lost'].map((segment, i) => ({
      segment, members: i === 0 ? 7 : i < 5 ? 3 : 1, revenue_minor: (11 - i) * 100000,
      mean_recency_days: 5.5 + i, mean_frequency: 6 - i / 2, mean_monetary_minor: 150000 - i * 10000,
    })),
    grid: [[1, 1, 0, 0, 0], [0, 1, 0, 0, 1], [1, 0, 1, 2, 0], [3, 1, 0, 2, 1], [3, 0, 1, 4, 3]],
    grid_segments: [['lost', 'lost', 'at_risk', 'at_risk', 'cant_lose'],
      ['hibernating', 'hibernating', 'at_risk', 'at_risk', 'cant_lose'],
      ['about_to_sleep', 'about_to_sleep', 'need_attention', 'loyal', 'loyal'],
      ['promising', 'potential_loyalists', 'potential_loyalists', 'loyal', 'loyal'],
      ['new', 'potential_loyalists', 'potential_loyalists', 'champions', 'champions']],
  },
  cohorts: [
    { month: '2026-01', members: 10, active: [10, 6, 4, 3], share: [1, 0.6, 0.4, 0.3] },
    { month: '2026-02', members: 8, active: [8, 4, 2], share: [1, 0.5, 0.25] },
    { month: '2026-03', members: 0, active: [0, 0], share: [0, 0] },
    { month: '2026-04', members: 5, active: [5], share: [1] },
  ],
  before_after: {
    window_months: 6, members: 20, followed: 8,
    before: { receipts: 24, amount_minor: 6000000, receipts_per_month: 0.5, average_receipt_minor: 250000 },
    after: { receipts: 60, amount_minor: 21000000, receipts_per_month: 1.25, average_receipt_minor: 350000 },
  },
};

test('reports: the customers report is the API\'s, with its CSV', async () => {
  const page = await office('/reports?r=customers');
  await page.getByRole('heading', { name: /^Customers ·.*every store$/ }).waitFor();
  const api = (await k.api('GET', `/v1/admin/reports/customers?from=${monthStart(11)}&to=${day(new Date())}`, undefined, admin)).body;
  assert.equal(api.rfm.members, 2, JSON.stringify(api.rfm));
  assert.equal(await figure(page, 'Bought in the period'), en(api.rfm.members));
  const heat = page.getByRole('table', { name: 'Recency (R) × frequency (F): members' });
  let cells = 0;
  for (let r = 0; r < 5; r++) for (let f = 0; f < 5; f++) cells += api.rfm.grid[r][f];
  assert.equal(cells, 2);
  const tiers = page.getByRole('list', { name: 'Tiers now' });
  for (const a of api.tiers.accounts) await tiers.getByText(en(a.accounts), { exact: true }).first().waitFor();
  const link = page.getByRole('link', { name: 'Download CSV: Customers' });
  const got = await page.request.get(new URL(await link.getAttribute('href'), k.base).toString());
  assert.equal(got.status(), 200);
  assert.match(await got.text(), /^figure,key,sub,value\r\n/);
  assert.match(await got.text(), new RegExp(`rfm_members,,,${api.rfm.members}\r\n`));
  assert.equal(await heat.locator('tbody tr').count(), 5);
  await checkA11y(page, 'the customers report');
  assertClean(page);
  await page.context().close();
});

test('reports: the customers report\'s window (1 to 24 months) is the route\'s window', async () => {
  const page = await office('/reports?r=customers');
  await page.getByRole('heading', { name: /^Customers ·.*every store$/ }).waitFor();
  const window = page.getByLabel('Window before/after');
  assert.equal(await window.inputValue(), '6', 'the route\'s default');
  const options = await window.locator('option').allTextContents();
  assert.equal(options.length, 24);
  assert.deepEqual([options[0], options[1], options[23]], ['1 month', '2 months', '24 months']);
  await page.getByText('6 months before and after;').waitFor();
  const asked = page.waitForResponse((r) => r.url().includes('/v1/admin/reports/customers?'));
  await window.selectOption('12');
  await page.getByRole('button', { name: 'Show' }).click();
  const r = await asked;
  assert.equal(new URL(r.url()).searchParams.get('window'), '12');
  assert.equal((await r.json()).before_after.window_months, 12);
  await page.getByText('12 months before and after;').waitFor();
  const link = page.getByRole('link', { name: 'Download CSV: Customers' });
  const href = new URL(await link.getAttribute('href'), k.base);
  assert.equal(href.searchParams.get('window'), '12');
  const csv = await (await page.request.get(href.toString())).text();
  assert.match(csv, /window_months,,,12\r\n/);
  // The points report has no window: none is sent.
  const points = page.waitForResponse((x) => x.url().includes('/v1/admin/reports/points?'));
  await page.getByRole('link', { name: 'Points', exact: true }).click();
  assert.equal(new URL((await points).url()).searchParams.get('window'), null);
  assert.equal(await page.getByLabel('Window before/after').count(), 0);
  await checkA11y(page, 'the customers report with its window');
  assertClean(page);
  await page.context().close();
});

for (const [lang, viewport, words] of [
  ['en', undefined, { title: 'Customers', champions: 'Champions', lost: 'Lost', before: 'Before', after: 'After', month: 'Jan 2026', loc: 'en-GB', window: 'Window before/after', window24: '24 months' }],
  ['ru', PHONE, { title: 'Клиенты', champions: 'Чемпионы', lost: 'Потерянные', before: 'До', after: 'После', month: 'янв. 2026 г.', loc: 'ru-RU', window: 'Окно до/после', window24: '24 мес.' }],
]) {
  test(`the customers report drawn (answer made here), ${lang}`, async () => {
    const page = await office('/reports?r=customers', { lang, ...(viewport ? { viewport } : {}) });
    const asked = [];
    await page.route(/\/v1\/admin\/reports\/customers/, (route) => {
      asked.push(new URL(route.request().url()));
      return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(CUSTOMERS) });
    });
    await page.reload();
    await page.locator('table.heat').waitFor();
    assert.equal(asked[asked.length - 1].pathname, '/v1/admin/reports/customers');
    assert.equal(asked[asked.length - 1].searchParams.get('window'), '6');
    assert.equal(await page.getByLabel(words.window).locator('option').last().textContent(), words.window24);
    const num = (n, d = 0) => new Intl.NumberFormat(words.loc, { maximumFractionDigits: d }).format(n);
    /* Heat map: row R 5 (first), column F 4 is champions with 4 members. */
    const rows = page.locator('table.heat tbody tr');
    const r5f4 = rows.nth(0).locator('td').nth(3);
    assert.equal((await r5f4.locator('strong').textContent()).trim(), num(4));
    assert.match(await r5f4.textContent(), new RegExp(words.champions));
    const r1f1 = rows.nth(4).locator('td').nth(0);
    assert.equal((await r1f1.locator('strong').textContent()).trim(), num(1));
    assert.match(await r1f1.textContent(), new RegExp(words.lost));
    /* The fullest cell is the darkest; an empty one is white. */
    const bg = async (cell) => cell.evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.notEqual(await bg(r5f4), await bg(rows.nth(0).locator('td').nth(1)));
    assert.equal(await bg(rows.nth(0).locator('td').nth(1)), 'rgb(255, 255, 255)');
    /* The cohort triangle: January's month 1 is 60 %, March (nobody) a dash. */
    const tri = page.locator('table.triangle tbody tr');
    assert.equal(await tri.count(), 4);
    const jan = tri.nth(0);
    assert.equal((await jan.locator('th').textContent()).trim(), words.month);
    assert.equal((await jan.locator('td').nth(2).textContent()).trim(), new Intl.NumberFormat(words.loc, { style: 'percent', maximumFractionDigits: 0 }).format(0.6));
    assert.equal(await tri.nth(3).locator('td.off').count(), 3);
    assert.equal((await tri.nth(2).locator('td').nth(1).textContent()).trim(), '—');
    /* Before/after bars with their values as text. */
    const freq = page.getByRole('list').filter({ hasText: num(1.25, 2) });
    await freq.getByText(words.after).waitFor();
    await freq.getByText(num(0.5, 2), { exact: true }).waitFor();
    await checkA11y(page, `the customers report drawn (${lang})`);
    await snap(page, `office-reports-customers-${lang}`, viewport ? [viewport] : undefined);
    assertClean(page);
    await page.context().close();
  });
}

/* A month or total of kopilka simulate --json (src/service/simulate.c). */
const M = (month, o) => ({
  ...(month ? { month } : {}), receipts: 10, receipts_without_card: 5, revenue_minor: 1000000, member_revenue_minor: 600000,
  discount_minor: 0, points_paid_minor: 0, issued: 0, burnt: 0, expired: 0, liability: 0, liability_minor: 0,
  cost_minor: 0, cost_share_bp: 0, accrued_cost_minor: 0, margin_impact_bp: 0, ...o,
});
const RESULT = {
  candidate: {
    receipts: 1234, cards: 56, skipped: 0, minor_per_point: 100,
    months: [M('2026-01', { issued: 1000, burnt: 100, liability: 900, cost_minor: 10000, cost_share_bp: 100 }),
      M('2026-02', { issued: 2000, burnt: 300, expired: 50, liability: 2550, cost_minor: 30000, cost_share_bp: 150 })],
    rules: [{ rule: 'base', kind: 'earn_percent', points: 1000, points_minor: 100000, discount_minor: 0, points_returned: 40, discount_returned_minor: 0 },
      { rule: 'labor-x2', kind: 'earn_percent', points: 2000, points_minor: 200000, discount_minor: 0, points_returned: 0, discount_returned_minor: 0 }],
    tier_changes: 7, tiers: [{ tier: null, cards: 30 }, { tier: 'silver', cards: 20 }, { tier: 'gold', cards: 6 }],
    birthday_grants: 12, tenure_grants: 3, cards_without_birthday: 9, cards_joined_unknown: 4,
    total: M(null, { receipts: 20, revenue_minor: 2000000, issued: 3000, burnt: 400, expired: 50, liability: 2550,
      cost_minor: 40000, cost_share_bp: 200, margin_impact_bp: -1500 }),
  },
  baseline: {
    receipts: 1234, cards: 56, skipped: 0, minor_per_point: 100,
    months: [M('2026-01', { discount_minor: 30000, cost_minor: 30000, cost_share_bp: 300 }),
      M('2026-02', { discount_minor: 60000, cost_minor: 60000, cost_share_bp: 300 })],
    rules: [{ rule: 'cumulative', kind: 'discount_cumulative', points: 0, points_minor: 0, discount_minor: 90000, points_returned: 0, discount_returned_minor: 2500 }],
    tier_changes: 0, tiers: [], birthday_grants: 0, tenure_grants: 0, cards_without_birthday: 0, cards_joined_unknown: 0,
    total: M(null, { receipts: 20, revenue_minor: 2000000, discount_minor: 90000, cost_minor: 90000, cost_share_bp: 450 }),
  },
};

test('the program model (answers mocked): files, local errors, the body sent, progress over polls, results', async () => {
  const page = await office('/simulate');
  const posted = [];
  let polls = 0;
  await page.route(/\/v1\/admin\/simulations/, (route) => {
    const r = route.request();
    if (r.method() === 'POST') {
      posted.push(JSON.parse(r.postData()));
      return route.fulfill({ status: 202, contentType: 'application/json', body: JSON.stringify({ id: 's1' }) });
    }
    assert.equal(new URL(r.url()).pathname, '/v1/admin/simulations/s1');
    polls++;
    const body = polls < 3 ? { state: 'running', progress: 0.25 * polls } : { state: 'done', progress: 1, result: RESULT };
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  });
  await page.getByRole('heading', { name: 'Program model', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.getByText('Paste a program or choose a file.').waitFor();
  assert.equal(await page.getByLabel('Candidate (JSON)').getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Candidate (JSON)').fill('{ not json');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.getByText(/This is not JSON/).waitFor();
  assert.equal(posted.length, 0);

  await page.getByRole('button', { name: 'Take the running program' }).click();
  await page.waitForFunction(() => document.querySelector('textarea').value.includes('"rules"'));
  const running = JSON.parse(await page.getByLabel('Candidate (JSON)').inputValue());
  const real = (await k.api('GET', '/v1/admin/programs/1', undefined, await k.login('anna'))).body.program;
  assert.deepEqual(running, real);
  await page.getByRole('button', { name: 'Compare with the cumulative discount' }).click();
  await page.getByLabel('Redemption share').fill('1.5');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.getByText('The redemption share is a number from 0 to 1.').waitFor();
  assert.equal(posted.length, 0);
  await page.getByLabel('Redemption share').fill('0,6');
  await page.getByLabel('From').fill('2026-01-01');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.getByText('Run finished: 1,234 receipts, 56 cards.').waitFor();
  assert.equal(polls, 3);
  assert.equal(posted.length, 1);
  assert.deepEqual(posted[0].program, real);
  assert.equal(posted[0].baseline.rules[0].kind, 'discount_cumulative');
  assert.equal(posted[0].redemption, 0.6);
  assert.equal(posted[0].from, '2026-01-01');
  assert.equal(posted[0].to, undefined);

  const totals = page.getByRole('table').first();
  const row = totals.getByRole('row', { name: /^Cost RUB/ });
  assert.deepEqual(await row.getByRole('cell').allTextContents(), ['Cost', rub(40000), rub(90000), rub(-50000)]);
  const share = totals.getByRole('row', { name: /^Cost \/ revenue/ });
  assert.deepEqual(await share.getByRole('cell').allTextContents(), ['Cost / revenue', '2%', '4.5%', '-2.5%']);
  await page.getByRole('heading', { name: 'A discount instead of the bonus' }).waitFor();
  const rules = page.getByRole('heading', { name: 'Rules that cost most' }).locator('xpath=following-sibling::div[1]');
  assert.deepEqual(await rules.locator('tbody td:first-child').allTextContents(), ['labor-x2', 'base']);
  assert.deepEqual(await rules.locator('thead th').allTextContents(),
    ['Rule', 'Rule kind', 'Points', 'Points in money', 'Discounts', 'Points taken back', 'Discounts taken back', 'Share']);
  assert.deepEqual(await rules.locator('tbody tr:last-child td').allTextContents(),
    ['base', 'earn_percent', '1,000', rub(100000), rub(0), '40', rub(0), '33.3%']);
  await page.getByText('Points and discounts are net of returns').waitFor();
  // The tiers at the end and the scheduler's grants, side by side (the
  // baseline has no tiers: a dash, not a zero).
  const tiers = page.getByRole('heading', { name: 'Tiers and scheduled grants' }).locator('xpath=following-sibling::div[1]');
  const tierRows = await tiers.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(tierRows, [
    ['Tier changes by reviews', '7', '0', '7'],
    ['Cards without a tier at the end', '30', '—', '—'],
    ['Cards in tier “silver” at the end', '20', '—', '—'],
    ['Cards in tier “gold” at the end', '6', '—', '—'],
    ['Birthday grants', '12', '0', '12'],
    ['Tenure grants', '3', '0', '3'],
    ['Cards without a known birthday', '9', '0', '9'],
    ['Cards with an unknown joining date', '4', '0', '4'],
  ]);
  await page.getByText('9 cards have no known birthday and got no birthday grant').waitFor();
  await page.getByText('4 cards have no known joining date: their tenure counts from their first receipt').waitFor();
  assert.equal(await page.locator('.chart-canvas canvas').count(), 3);
  await checkA11y(page, 'the program model with results');
  await snap(page, 'office-simulate-results');
  assertClean(page);
  await page.context().close();
});

test('the program model runs on the server: the page shows the run\'s result', async () => {
  const page = await office('/simulate');
  await page.getByRole('button', { name: 'Take the running program' }).click();
  await page.waitForFunction(() => document.querySelector('textarea').value.includes('"rules"'));
  await page.getByRole('button', { name: 'Compare with the cumulative discount' }).click();
  const started = page.waitForResponse((r) => r.url().endsWith('/v1/admin/simulations') && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  const answer = await started;
  assert.equal(answer.status(), 202);
  const { id } = await answer.json();
  await page.getByText(/^Run finished: /).waitFor({ timeout: 30000 });
  const run = (await k.api('GET', '/v1/admin/simulations/' + id, undefined, admin)).body;
  assert.equal(run.state, 'done', JSON.stringify(run));
  const c = run.result.candidate.total;
  const b = run.result.baseline.total;
  assert.equal(run.result.candidate.receipts, 3, 'the three purchases made at the tills');
  assert.equal(c.issued > 0, true, JSON.stringify(c));
  await page.getByText(`Run finished: ${run.result.candidate.receipts} receipts, ${run.result.candidate.cards} cards.`).waitFor();
  const totals = page.getByRole('table').first();
  const cells = async (re) => totals.getByRole('row', { name: re }).getByRole('cell').allTextContents();
  assert.deepEqual(await cells(/^Issued /), ['Issued', en(c.issued), en(b.issued), en(c.issued - b.issued)]);
  assert.deepEqual(await cells(/^Revenue /), ['Revenue', rub(c.revenue_minor), rub(b.revenue_minor), rub(c.revenue_minor - b.revenue_minor)]);
  assert.deepEqual(await cells(/^Cost RUB/), ['Cost', rub(c.cost_minor), rub(b.cost_minor), rub(c.cost_minor - b.cost_minor)]);
  const first = run.result.candidate.rules.slice().sort((x, y) => y.points_minor + y.discount_minor - x.points_minor - x.discount_minor)[0];
  const rules = page.getByRole('heading', { name: 'Rules that cost most' }).locator('xpath=following-sibling::div[1]');
  assert.equal(await rules.locator('tbody tr').count(), Math.max(1, run.result.candidate.rules.length));
  assert.equal(await rules.locator('tbody tr:first-child td:first-child').textContent(), first.rule);
  await checkA11y(page, 'the program model with a real run');
  assertClean(page);
  await page.context().close();
});

test('the program model in Russian: the server\'s refusal is shown at the candidate', async () => {
  const page = await office('/simulate', { lang: 'ru' });
  await page.getByRole('heading', { name: 'Модель программы', level: 1 }).waitFor();
  await page.getByLabel('Кандидат (JSON)').fill('{"name": "x"}');
  const refused = page.waitForResponse((r) => r.url().endsWith('/v1/admin/simulations'));
  await page.getByRole('button', { name: 'Запустить' }).click();
  const r = await refused;
  assert.equal(r.status(), 400);
  const body = await r.json();
  assert.match(body.error.field, /^program\b/, JSON.stringify(body));
  await page.getByRole('alert').filter({ hasText: 'Сервер не принял прогон' }).waitFor();
  assert.equal(await page.getByLabel('Кандидат (JSON)').getAttribute('aria-invalid'), 'true');
  await checkA11y(page, 'the program model in Russian');
  await snap(page, 'office-simulate-ru');
  assertClean(page);
  await page.context().close();
});

/* Last: its imported sales would be receipts of the program model's runs above. */
test('reports: members and non-members, the four figures are the API\'s, with a tier and the CSV', async () => {
  const today = day(new Date());
  const csv = 'at,store,receipt,card,kind,sku,category,amount,qty,customer\n'
    + `${today} 00:30:00,main,K1-1,,sale,OIL,parts,2000.00,1,K1\n`
    + `${today} 00:31:00,main,K2-1,,sale,OIL,parts,1000.00,1,K2\n`
    + `${today} 00:32:00,north,U-1,,sale,OIL,parts,1500.00,1,\n`
    + `${today} 00:33:00,main,S-1,${k.cards[1]},sale,OIL,parts,900.00,1,\n`;
  const imp = await fetch(k.base + '/v1/admin/imports?kind=sales', {
    method: 'POST', headers: { 'Content-Type': 'text/csv', Authorization: 'Bearer ' + admin }, body: csv,
  });
  assert.equal(imp.status, 200, await imp.text());
  const till = await k.api('POST', '/v1/purchases', { receipt: 'T-1', lines: [{ sku: 'OIL', category: 'parts', amount: 50000 }] }, k.keys.main);
  assert.equal(till.status, 201, JSON.stringify(till.body));

  const page = await office('/reports?r=members');
  const asked = [];
  page.on('request', (r) => r.url().includes('/v1/admin/reports/') && asked.push(new URL(r.url())));
  await page.getByRole('heading', { name: /^Members and non-members ·.*every store$/ }).waitFor();
  const api = (await k.api('GET', `/v1/admin/reports/members?from=${monthStart(11)}&to=${today}`, undefined, admin)).body;
  // Two members (card 0's two purchases, card 1's purchase and its imported sale), four non-member receipts.
  assert.deepEqual([api.members, api.member_receipts, api.nonmember_receipts, api.followed_customers],
    [2, 4, 4, 2], JSON.stringify(api));
  const x = (v) => new Intl.NumberFormat('en-GB', { maximumFractionDigits: 2 }).format(v);
  const p1 = (v) => new Intl.NumberFormat('en-GB', { style: 'percent', maximumFractionDigits: 1 }).format(v);
  await waitFor('the members\' figures', async () => (await figure(page, 'Average receipt ratio')) === `${x(api.average_receipt_ratio)} times`, 10000);
  assert.equal(await figure(page, 'Top 10 % of non-members'), p1(api.top_share));
  assert.equal(await figure(page, 'Members who bought almost nothing'), p1(api.idle_share));
  assert.equal(await figure(page, 'Active within 12 months'), p1(api.recent_share));
  await page.getByText('Seed 000: Gold members’ receipts are 2.6 times those of non-members').waitFor();
  await page.getByText('Seed 001: about 70 % of buyers buy at least once a year').waitFor();
  const bars = page.locator('figure.pair-bars').filter({ hasText: 'Revenue' });
  assert.deepEqual(await bars.locator('.bar-value').allTextContents(), [rub(api.member_revenue_minor), rub(api.nonmember_revenue_minor)]);
  await page.getByText(/Returns are not subtracted\./).waitFor();
  await checkA11y(page, 'the members report');
  await snap(page, 'office-reports-members');

  // A tier: only that tier's members (nobody here has one); non-members stay.
  await page.getByLabel('Tier', { exact: true }).fill('gold');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByRole('heading', { name: /^Members and non-members ·.*every store · Tier gold$/ }).waitFor();
  // The heading names the tier at once; its request may be a moment later.
  await waitFor('the tier\'s request', async () => asked.some((u) => u.searchParams.get('tier') === 'gold'), 10000);
  const last = asked[asked.length - 1];
  assert.equal(last.pathname, '/v1/admin/reports/members');
  assert.equal(last.searchParams.get('tier'), 'gold');
  const gold = (await k.api('GET', `/v1/admin/reports/members?from=${monthStart(11)}&to=${today}&tier=gold`, undefined, admin)).body;
  assert.deepEqual([gold.members, gold.nonmember_receipts], [0, 4]);
  await waitFor('the gold members\' figures', async () => (await figure(page, 'Members who bought almost nothing')) === p1(0), 10000);
  const link = page.getByRole('link', { name: 'Download CSV: Members and non-members' });
  const href = new URL(await link.getAttribute('href'), k.base);
  assert.equal(href.searchParams.get('tier'), 'gold');
  assert.equal(href.searchParams.get('format'), 'csv');
  const got = await page.request.get(href.toString());
  assert.equal(got.status(), 200);
  assert.match(await got.text(), /^figure,value\r\naverage_receipt_ratio,0\.0000\r\n/);
  assertClean(page);
  await page.context().close();

  const ru = await office('/reports?r=members', { lang: 'ru', viewport: PHONE });
  await ru.getByRole('heading', { name: 'Отчёты', level: 1 }).waitFor();
  await ru.locator('.claims').waitFor();
  assert.equal(await figure(ru, 'Доля 10 % лучших покупателей без карты'), new Intl.NumberFormat('ru-RU', { style: 'percent', maximumFractionDigits: 1 }).format(api.top_share));
  await ru.getByText(/Сид 001:/).waitFor();
  await checkA11y(ru, 'the members report in Russian');
  await snap(ru, 'office-reports-members-ru', [PHONE]);
  assertClean(ru);
  await ru.context().close();
});
