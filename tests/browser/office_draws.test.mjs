// office_draws.test.mjs: prize draws in the browser (docs/marketing.md "Prize
// draws"), against a real `kopilka serve`: the marketer's Draws section
// (a refusal shown at its field, a new draw with its commitment, a draw
// closed after its period with its winners and participants; a cashier
// does not see the section), the public page (#/draw/{id}, no login) that
// recomputes the winners with WebCrypto and says "Verified", and says what
// does not match when the answer is tampered with (page.route), and the
// winner's cabinet showing the prize. axe on each view, screenshots at
// desktop and phone widths.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startKopilka, launch, newPage, officePage, assertClean, checkA11y, snap, waitFor, sleep } from './harness.mjs';

let k, browser, mara, draw;
const PHONE0 = '+79167654300';

before(async () => {
  k = await startKopilka({ staff: { anna: 'admin', mara: 'marketer', ivan: 'cashier' }, cards: 3 });
  browser = await launch();
  const admin = await k.login('anna');
  mara = await k.login('mara');
  // A draw over the next few seconds: its purchases are made now.
  const now = Date.now();
  const iso = (t) => new Date(t).toISOString().replace(/\.\d+Z$/, 'Z');
  const r = await k.api('POST', '/v1/admin/draws', {
    name: 'Autumn', from: iso(now - 3600e3), to: iso(now + 4000),
    rule: { kind: 'spend', per_minor: 100000 }, prizes: [{ name: 'Winter tyres', count: 1 }, { name: 'Car wash', count: 1 }],
  }, mara);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  draw = r.body;
  for (const [i, phone, amount] of [[0, PHONE0, 350000], [1, '+79167654301', 120000]]) {
    const c = await k.api('POST', '/v1/customers', {
      card: k.cards[i], full_name: `Customer ${i}`, phone, consent: { given: true, text_version: '2026-01' },
    }, admin);
    assert.equal(c.status, 201, JSON.stringify(c.body));
    const p = await k.api('POST', '/v1/purchases', {
      card: k.cards[i], receipt: `R-${i}`, lines: [{ sku: 'LAB', category: 'labor', amount }],
    }, k.keys.main);
    assert.equal(p.status, 201, JSON.stringify(p.body));
  }
  await waitFor('the draw period to end', () => Date.now() > now + 4500, 10000);
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

test('a cashier has no Draws section', async () => {
  const page = await officePage(browser, k, '/', { login: 'ivan' });
  assert.equal(await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Prize draws' }).count(), 0);
  await page.context().close();
});

test('the marketer creates a draw, closes one and sees its results', async () => {
  const page = await officePage(browser, k, '/draws', { login: 'mara' });
  await page.getByRole('heading', { name: 'Prize draws', level: 1 }).waitFor();
  await page.getByRole('cell', { name: 'Autumn' }).waitFor();
  await checkA11y(page, 'draws list');
  // A refusal at its field: a period that ends before it starts.
  await page.getByLabel('Name', { exact: true }).fill('New year');
  await page.getByLabel('Period starts').fill('2027-01-01T00:00');
  await page.getByLabel('Period ends (excluded)').fill('2026-12-01T00:00');
  await page.getByLabel(/^Prizes, one a line/).fill('Winter tyres: 1\nCar wash: 3');
  await page.getByRole('button', { name: 'New draw' }).click();
  await page.locator('[aria-invalid="true"]').and(page.getByLabel('Period ends (excluded)')).waitFor();
  await page.getByLabel('Period ends (excluded)').fill('2027-02-01T00:00');
  await page.getByRole('button', { name: 'New draw' }).click();
  const created = page.getByText(/^Draw #\d+ created\. Its commitment is published: [0-9a-f]{64}$/);
  await created.waitFor();
  const fresh = (await created.textContent()).match(/#(\d+)/)[1];
  await page.getByRole('cell', { name: 'New year' }).waitFor();
  const list = await k.api('GET', '/v1/admin/draws', undefined, mara);
  const made = list.body.draws.find((d) => String(d.id) === fresh);
  assert.deepEqual([made.state, made.rule.per_minor, made.prizes], ['open', 100000, [{ name: 'Winter tyres', count: 1 }, { name: 'Car wash', count: 3 }]]);
  // Close the past one: confirm, then its results.
  await page.getByRole('button', { name: `Draw #${draw.id}`, exact: true }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Yes, draw' }).click();
  await page.getByText(`Draw #${draw.id} is drawn.`).waitFor();
  const results = page.getByRole('region', { name: `Results of draw #${draw.id}` }).or(page.locator('section, .card').filter({ hasText: `Results of draw #${draw.id}` }).last());
  await results.getByText('Participants: 2, chances: 4').waitFor();
  const pub = (await k.api('GET', `/v1/draws/${draw.id}`)).body;
  assert.equal(pub.state, 'closed');
  assert.equal(pub.commitment, draw.commitment);
  for (const w of pub.winners) await results.getByRole('cell', { name: w.id }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Download JSON' }).count(), 1);
  await checkA11y(page, 'draws results');
  await snap(page, 'office-draws');
  assertClean(page);
  await page.context().close();
});

test('the public page verifies the draw in the browser, and a tampered answer is caught', async () => {
  const pub = (await k.api('GET', `/v1/draws/${draw.id}`)).body;
  if (pub.state !== 'closed') assert.equal((await k.api('POST', `/v1/admin/draws/${draw.id}/close`, undefined, mara)).status, 200);
  const page = await newPage(browser, { lang: 'en' });
  await page.goto(`${k.base}/#/draw/${draw.id}`);
  await page.getByRole('heading', { name: 'Prize draw “Autumn”', level: 1 }).waitFor();
  await page.getByText(/^Verified: the seed matches the commitment/).waitFor();
  assert.equal(await page.getByTestId('commitment').textContent(), draw.commitment);
  await checkA11y(page, 'public draw');
  await snap(page, 'cabinet-draw');
  assertClean(page);
  await page.context().close();
  // The same page given one entry's count changed: it says so.
  const bad = await newPage(browser, { lang: 'en' });
  await bad.route(`**/v1/draws/${draw.id}`, async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    body.entries[0].count += 1;
    await route.fulfill({ response: res, json: body });
  });
  await bad.goto(`${k.base}/#/draw/${draw.id}`);
  const alert = bad.getByText(/^Does not match: /);
  await alert.waitFor();
  assert.match(await alert.textContent(), /total_entries/);
  assert.match(await alert.textContent(), /entries_digest/);
  await bad.context().close();
});

test('the winner sees the prize in the cabinet', async () => {
  const pub = (await k.api('GET', `/v1/draws/${draw.id}`)).body;
  const page = await newPage(browser, { lang: 'en' });
  await page.goto(k.base + '/');
  await page.getByLabel('Phone or e-mail').fill(PHONE0);
  await page.getByRole('button', { name: 'Get a code' }).click();
  // The outbox spaces messages to one phone: the welcome and points SMS
  // went just before, so the code may take longer than k.code waits.
  const code = await waitFor(`a login code sent to ${PHONE0}`, () => {
    for (const m of k.sms.received().reverse()) {
      const f = m.fields || {};
      const c = f.to === PHONE0 && String(f.text || '').match(/\b(\d{6})\b/);
      if (c) return c[1];
    }
    return null;
  }, 90000);
  await page.getByLabel('Code from the message').fill(code);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.getByRole('navigation').getByRole('link', { name: 'Prize draws' }).click();
  await page.getByRole('heading', { name: 'Prize draws', level: 1 }).waitFor();
  const mine = await page.getByText(/^Your participant number is [0-9a-f]{16}, chances: 3\./).textContent();
  const id = mine.match(/([0-9a-f]{16})/)[1];
  const won = pub.winners.find((w) => w.id === id);
  assert.ok(won, 'both participants win one of the two prizes');
  await page.getByText(`You won: ${won.prize}!`).waitFor();
  await checkA11y(page, 'my draws');
  await snap(page, 'cabinet-my-draws');
  assertClean(page);
  await sleep(10);
  await page.context().close();
});
