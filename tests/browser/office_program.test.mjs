// office_program.test.mjs: the back office's dashboard, program versions,
// CSV import and audit log in the browser, against a real `kopilka serve`:
// the dashboard's figures are the API's (purchases made at two stores with
// their terminal keys), its charts draw and their tables hold the same
// months; a program upload names each bad field, then loads, shows its
// changes, quotes in the sandbox and schedules a version that is then
// cancelled; a CSV import shows its bad lines, then imports; the audit
// log's filters find the program loads and the import. axe on each
// section, screenshots at desktop and phone widths, Russian and English.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startKopilka, launch, officePage, assertClean, checkA11y, snap, waitFor, PHONE, programDay, programMonthStart } from './harness.mjs';

let k, browser, admin, program1;

// Days of the program's calendar, as the page (its browser in the program's zone) picks them.
const day = (d) => programDay(d);
const monthStart = (back) => programMonthStart(back);

before(async () => {
  k = await startKopilka({ staff: { anna: 'admin', olga: 'auditor' }, stores: ['main', 'north'], notify: false, cards: 6 });
  browser = await launch();
  admin = await k.login('anna');
  // Two customers, four purchases at two stores, one burn.
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
  await buy('north', k.cards[2], 'N-2', [{ sku: 'TYRE', category: 'parts', amount: 800000 }]);
  program1 = (await k.api('GET', '/v1/admin/programs/1', undefined, admin)).body.program;
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

/* A page of the office, logged in as `login` (default anna), at #path. */
const office = (path, opts = {}) => officePage(browser, k, path, { login: 'anna', ...opts });

/* The value shown on the dashboard's figure card labelled `label`. */
async function figure(page, label) {
  const card = page.locator('.figures .card').filter({ has: page.locator('.figure-label', { hasText: new RegExp(`^${label}$`) }) });
  return (await card.locator('.figure').textContent()).trim();
}

const en = (n) => new Intl.NumberFormat('en-GB', { maximumFractionDigits: 0 }).format(n);
const rub = (minor) => new Intl.NumberFormat('en-GB', { style: 'currency', currency: 'RUB' }).format(minor / 100);

test('the dashboard shows the API figures, charts with their tables, per store', async () => {
  const from = monthStart(11);
  const to = day(new Date());
  const all = (await k.api('GET', `/v1/admin/dashboard?from=${from}&to=${to}`, undefined, admin)).body;
  assert.equal(all.points.issued > 0, true, JSON.stringify(all));
  const page = await office('/');
  await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
  await page.locator('.figures').first().waitFor();
  assert.equal(await page.getByLabel('From', { exact: true }).inputValue(), from);
  assert.equal(await page.getByLabel('To', { exact: true }).inputValue(), to);
  assert.equal(await figure(page, 'Members'), en(all.members));
  assert.equal(await figure(page, 'Active'), en(all.members_active));
  assert.equal(await figure(page, 'Points issued'), en(all.points.issued));
  assert.equal(await figure(page, 'Points burnt'), en(all.points.burnt));
  assert.equal(await figure(page, 'Points expired'), en(all.points.expired));
  assert.equal(await figure(page, 'Points outstanding'), en(all.points.outstanding));
  assert.equal(await figure(page, 'Liability'), rub(all.liability_minor));
  assert.equal(all.points.burnt, 100);

  // Two charts drawn on canvases, each with its table of the same months.
  assert.equal(await page.locator('figure.chart canvas').count() >= 2, true, 'the charts draw on canvases');
  const month = all.by_month[all.by_month.length - 1];
  await page.getByText('Show as a table: Points by month').click();
  const points = page.getByRole('table', { name: 'Points by month' });
  await points.waitFor();
  assert.equal(await points.locator('tbody tr').count(), 12);
  const last = points.locator('tbody tr').last();
  assert.deepEqual(
    (await last.locator('td').allTextContents()).slice(1),
    [en(month.issued), en(month.burnt), en(month.expired)],
  );
  await page.getByText('Show as a table: Purchases and new members by month').click();
  const buys = page.getByRole('table', { name: 'Purchases and new members by month' });
  assert.deepEqual(
    (await buys.locator('tbody tr').last().locator('td').allTextContents()).slice(1),
    [en(month.purchases), en(month.new_members), rub(month.revenue_minor)],
  );
  await checkA11y(page, 'the dashboard');
  await snap(page, 'office-dashboard');

  // One store's figures.
  const north = (await k.api('GET', `/v1/admin/dashboard?from=${from}&to=${to}&store=north`, undefined, admin)).body;
  assert.notEqual(north.points.issued, all.points.issued);
  await page.getByLabel('Store', { exact: true }).fill('north');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByRole('heading', { name: /store north/ }).waitFor();
  // The heading names the store at once; the figures follow their answer.
  await waitFor('the north store\'s figures',
    async () => (await figure(page, 'Points issued')) === en(north.points.issued), 10000);
  assert.equal(await figure(page, 'Points issued'), en(north.points.issued));
  assert.equal(await figure(page, 'Liability'), rub(north.liability_minor));

  // A period the API refuses: the message is at its field.
  await page.getByLabel('From', { exact: true }).fill('2020-01-01');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByRole('alert').first().waitFor();
  assert.equal(await page.getByLabel('From', { exact: true }).getAttribute('aria-invalid'), 'true');
  assertClean(page);
  await page.context().close();
});

test('program versions: each bad field named, then loaded with its changes; sandbox quote; scheduled and cancelled (Russian)', async () => {
  const page = await office('/programs', { lang: 'ru' });
  await page.getByRole('heading', { name: 'Версии программы', level: 1 }).waitFor();
  await page.getByText('Сейчас действует версия 1.').waitFor();
  await checkA11y(page, 'program versions');

  // Two mistakes: both named, each with the server's message.
  const bad = { ...program1, currency: 12, rules: program1.rules.map((r) => (r.id === 'earn-parts-12' ? { ...r, percent: 'x' } : r)) };
  const refused = await k.api('POST', '/v1/admin/programs/validate', { program: bad }, admin);
  assert.equal(refused.status, 400);
  const text = page.getByLabel('Программа (JSON)');
  await text.fill(JSON.stringify(bad, null, 2));
  await page.getByRole('button', { name: 'Загрузить' }).click();
  const errors = page.getByRole('table', { name: 'Ошибки проверки' });
  await errors.waitFor();
  const rows = await errors.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(
    rows.sort(),
    refused.body.error.fields.map((f) => [f.field, f.message]).sort(),
  );
  assert.equal(rows.length, 2);
  assert.equal(await text.getAttribute('aria-invalid'), 'true');
  await checkA11y(page, 'program errors');
  await snap(page, 'office-program-errors');

  // Fixed: checked, its change against version 1 shown, then loaded.
  const good = { ...program1, rules: program1.rules.map((r) => (r.id === 'earn-parts-12' ? { ...r, percent: 15 } : r)) };
  await text.fill(JSON.stringify(good, null, 2));
  await page.getByLabel('Название версии').fill('Осень');
  await page.getByRole('button', { name: 'Проверить и сравнить' }).click();
  await page.getByRole('heading', { name: 'Отличия от версии 1' }).waitFor();
  const change = page.locator('tr', { hasText: 'rules[id=earn-parts-12].percent' });
  await change.waitFor();
  assert.deepEqual(await change.locator('td').allTextContents(), ['rules[id=earn-parts-12].percent', 'изменено', '12', '15']);
  await page.getByRole('button', { name: 'Загрузить' }).click();
  await page.getByText('Версия 2 загружена и действует.').waitFor();
  await page.getByText('Сейчас действует версия 2.').waitFor();

  // The sandbox quote with a card, on the running version: the API's explain list.
  const body = { card: k.cards[0], burn: 50, lines: [{ sku: 'OIL', category: 'parts', amount: 100000, qty: 1, promo: false }] };
  const expected = (await k.api('POST', '/v1/admin/programs/sandbox', body, admin)).body;
  await page.getByLabel('Карта').fill(k.cards[0]);
  await page.getByLabel('Списать баллов').fill('50');
  const line = page.getByRole('group', { name: 'Строка 1' });
  await line.getByLabel('Артикул').fill('OIL');
  await line.getByLabel('Категория').fill('parts');
  await line.getByLabel('Сумма строки, ₽').fill('1000');
  await page.getByRole('button', { name: 'Рассчитать' }).click();
  const explain = page.getByRole('table', { name: 'Объяснение' });
  await explain.waitFor();
  const ruleCells = await explain.locator('tbody tr td:first-child').allTextContents();
  assert.deepEqual(ruleCells, expected.explain.map((x) => x.rule));
  assert.ok(ruleCells.includes('earn-parts-12'));
  await page.getByText(expected.burn_limited_by ? `Списание ограничено: ${expected.burn_limited_by}` : 'Списание ничем не ограничено.').waitFor();
  const after = await k.api('GET', `/v1/admin/cards/${k.cards[0]}`, undefined, admin);
  assert.equal(after.body.balance, expected.balance_before, 'the sandbox wrote nothing');
  await checkA11y(page, 'the sandbox quote');
  await snap(page, 'office-program-sandbox');

  // Scheduled from a date, then cancelled.
  await page.getByLabel('С даты и времени').check();
  // A wall time of the browser's zone, the program's (harness.mjs PROGRAM_ZONE, +03:00).
  const local = `${programDay(new Date(Date.now() + 3 * 86400e3))}T09:30`;
  await page.getByLabel('Дата и время начала').fill(local);
  await page.getByRole('button', { name: 'Запланировать' }).click();
  await page.getByText(/^Версия 3 начнёт действовать/).waitFor();
  const v3 = page.locator('tbody tr', { has: page.getByRole('link', { name: 'Открыть версию 3' }) });
  await v3.getByText('запланирована').waitFor();
  const listed = (await k.api('GET', '/v1/admin/programs', undefined, admin)).body.versions.find((v) => v.version === 3);
  assert.equal(listed.state, 'scheduled');
  assert.equal(listed.activates_at, new Date(`${local}:00+03:00`).toISOString().replace('.000Z', 'Z'));
  await v3.getByRole('button', { name: 'Отменить версию 3' }).click();
  // The question takes the focus: confirmed from the keyboard.
  await v3.getByRole('button', { name: 'Да, отменить версию 3' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Да, отменить версию 3');
  await page.keyboard.press('Enter');
  await page.getByText('Версия 3 отменена.').waitFor();
  await v3.getByText('отменена').waitFor();
  assert.equal((await k.api('GET', '/v1/admin/programs', undefined, admin)).body.versions.find((v) => v.version === 3).state, 'cancelled');

  // Version 1's page: its changes against the running version 2.
  await page.getByRole('link', { name: 'Открыть версию 1' }).click();
  await page.getByRole('heading', { level: 1, name: /^Версия 1:/ }).waitFor();
  const back = page.locator('tr', { hasText: 'rules[id=earn-parts-12].percent' });
  await back.waitFor(); /* the diff is asked for once the version is read */
  assert.deepEqual(await back.locator('td').allTextContents(), ['rules[id=earn-parts-12].percent', 'изменено', '15', '12']);
  await checkA11y(page, 'a program version');
  await snap(page, 'office-program-version');
  assertClean(page);
  await page.context().close();
});

test('a CSV import: its bad lines first, then imported (phone)', async () => {
  const bad = 'number,state\nOLD-1,issued\nbad!,issued\nOLD-3,zzz\n';
  const res = await fetch(k.base + '/v1/admin/imports?kind=cards&dry_run=1', {
    method: 'POST',
    headers: { 'Content-Type': 'text/csv', Authorization: 'Bearer ' + admin },
    body: bad,
  });
  assert.equal(res.status, 400);
  const expected = await res.json();
  assert.equal(expected.errors.length, 2);

  const page = await office('/imports', { viewport: PHONE });
  await page.getByRole('heading', { name: 'Import from CSV', level: 1 }).waitFor();
  await page.getByLabel('What the file holds').selectOption('cards');
  await page.getByLabel('CSV file').setInputFiles({ name: 'cards.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
  assert.equal(await page.getByRole('button', { name: 'Import', exact: true }).isDisabled(), true);
  await page.getByRole('button', { name: 'Check (writes nothing)' }).click();
  const errors = page.getByRole('table', { name: 'Errors by line' });
  await errors.waitFor();
  const rows = await errors.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.deepEqual(rows, expected.errors.map((e) => [String(e.line), e.field, e.message]));
  await page.getByText('The file has 2 errors. Nothing was written.', { exact: false }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Import', exact: true }).isDisabled(), true);
  assert.equal((await k.api('GET', '/v1/admin/cards/OLD-1', undefined, admin)).status, 404, 'the dry run wrote nothing');
  await checkA11y(page, 'import errors');
  await snap(page, 'office-import-errors', [PHONE]);

  await page.getByLabel('CSV file').setInputFiles({
    name: 'cards.csv', mimeType: 'text/csv', buffer: Buffer.from('number,state\nOLD-1,issued\nOLD-2,issued\nOLD-3,blocked\n'),
  });
  await page.getByRole('button', { name: 'Check (writes nothing)' }).click();
  await page.getByText('The check passed: no errors. You may import.').waitFor();
  assert.equal((await k.api('GET', '/v1/admin/cards/OLD-1', undefined, admin)).status, 404);
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await page.getByText('The import is done.').waitFor();
  const figures = await page.locator('.grid .card').evaluateAll((cs) => cs.map((c) => c.textContent));
  assert.deepEqual(figures, ['Rows3', 'New3', 'Updated0', 'Unchanged0']);
  const card = await k.api('GET', '/v1/admin/cards/OLD-3', undefined, admin);
  assert.equal(card.status, 200);
  assert.equal(card.body.state, 'blocked');
  await checkA11y(page, 'import done');
  await snap(page, 'office-import-done');
  assertClean(page);
  await page.context().close();
});

test('the audit log: filters find the program loads and the import, newest first, with the hash chain', async () => {
  const page = await office('/audit');
  await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
  const table = page.getByRole('table', { name: 'Entries, newest first' });
  await table.locator('tbody tr').first().waitFor();
  const seqs = (await table.locator('tbody tr td:first-child').allTextContents()).map(Number);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), 'newest first');
  await checkA11y(page, 'the audit log');

  const actions = async () => table.locator('tbody tr td:nth-child(4)').allTextContents();
  const targets = async () => table.locator('tbody tr td:nth-child(5)').allTextContents();
  await page.getByLabel('Action', { exact: true }).fill('program.');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.waitForFunction(() => location.hash.includes('action=program.'));
  await page.waitForFunction(() => [...document.querySelectorAll('tbody tr td:nth-child(4)')].every((td) => td.textContent.startsWith('program.')));
  assert.deepEqual(await targets(), ['program:3', 'program:3', 'program:2', 'program:1']);
  assert.deepEqual(await actions(), ['program.cancel', 'program.load', 'program.load', 'program.load']);

  // The import, by actor and action.
  await page.getByLabel('Action', { exact: true }).fill('import');
  await page.getByLabel('Actor', { exact: true }).fill('staff:anna');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('tbody tr td:nth-child(4)')].every((td) => td.textContent.startsWith('import')));
  const found = await k.api('GET', '/v1/admin/audit?order=desc&action=import&actor=staff:anna', undefined, admin);
  assert.deepEqual(await actions(), found.body.entries.map((e) => e.action));
  assert.ok(found.body.entries.length >= 1);
  // Its hash chain, folded until opened.
  const row = table.locator('tbody tr').first();
  assert.equal(await row.locator('dd').first().isVisible(), false);
  await row.getByText('Hash chain').click();
  assert.equal(await row.locator('dd').nth(1).textContent(), found.body.entries[0].hash);
  assert.equal(await row.locator('dd').nth(0).textContent(), found.body.entries[0].prev_hash);
  assert.equal(await page.getByRole('button', { name: 'Older' }).isDisabled(), true);
  await checkA11y(page, 'the filtered audit log');
  await snap(page, 'office-audit');

  // A bad filter is named at its field.
  await page.getByLabel('From', { exact: true }).fill('2026-11-20T10:00');
  await page.getByLabel('To', { exact: true }).fill('2026-11-01T10:00');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByRole('alert').first().waitFor();
  assert.equal(await page.getByLabel('To', { exact: true }).getAttribute('aria-invalid'), 'true');
  assertClean(page);
  await page.context().close();
});

test('an auditor reads program versions and the audit log, loads nothing, imports nothing', async () => {
  const page = await office('/programs', { login: 'olga' });
  await page.getByText('Version 2 is running.').waitFor();
  await page.getByRole('button', { name: 'Check and compare' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Load', exact: true }).count(), 0);
  assert.equal(await page.getByLabel('Version name').count(), 0);
  const nav = page.getByRole('navigation', { name: 'Sections' });
  assert.equal(await nav.getByRole('link', { name: 'Import' }).count(), 0);
  assert.equal(await nav.getByRole('link', { name: 'Audit log' }).count(), 1);
  await checkA11y(page, 'program versions, read only');
  assertClean(page);
  await page.context().close();
});
