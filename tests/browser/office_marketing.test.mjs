// office_marketing.test.mjs: the back office's Segments (#/segments) and
// Campaigns (#/campaigns) in the browser, against a real `kopilka serve`:
// the sections a marketer sees and a cashier does not; a segment's filter
// typed in, its count following the filter live (the API's count), a
// refusal shown with its field, the segment saved and listed; a campaign
// drafted in the form, previewed (who, how much, the message by channel),
// started and run by the server's scheduler to the end, the page's progress
// the API's; a campaign granting by a program rule on "campaign" (its
// distribution previewed, its results' points spent and expired). axe on
// each view, screenshots at desktop and phone widths, English and Russian.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startKopilka, launch, officePage, assertClean, checkA11y, snap, waitFor, PHONE } from './harness.mjs';

let k, browser, mia;

before(async () => {
  // The demo's program (as the harness makes it) with a grant rule on
  // "campaign": 2.5 % of the last 90 days' spend, in points.
  const base = JSON.parse(readFileSync(new URL('../../examples/autoservice-case1.json', import.meta.url), 'utf8'));
  const program = {
    ...base,
    customers: { ...(base.customers || {}), consent_version: '2026-01' },
    notifications: { quiet_hours: { from: '00:00', to: '00:00' } },
    rules: [...base.rules, {
      id: 'spend-back', kind: 'grant', on: 'campaign', point_kind: 'premium',
      percent_of_spend: '2.5', spend_days: 90, points_max: 1000,
    }],
  };
  k = await startKopilka({ staff: { mia: 'marketer', ivan: 'cashier' }, notify: false, cards: 3, program });
  browser = await launch();
  mia = await k.login('mia');
  for (const i of [0, 1, 2]) {
    const r = await k.api('POST', '/v1/customers', {
      card: k.cards[i], full_name: `Customer ${i}`, phone: `+7 916 765-43-2${i}`,
      consent: { given: true, text_version: '2026-01' },
    }, k.keys.main);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  for (const i of [0, 1]) {
    const r = await k.api('POST', '/v1/purchases', {
      card: k.cards[i], receipt: `R-${i}`, lines: [{ sku: 'LABOR', category: 'labor', amount: 300000 }],
    }, k.keys.main);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
});
after(async () => {
  await browser?.close();
  await k?.stop();
});

const office = (path, opts = {}) => officePage(browser, k, path, { login: 'mia', ...opts });
const BUYERS = '{"period": {"days": 30}, "spend": {"min": 1}}';

test('the sections: Segments and Campaigns for a marketer, neither for a cashier', async () => {
  const page = await office('/');
  const nav = page.getByRole('navigation', { name: 'Sections' });
  await nav.getByRole('link', { name: 'Segments' }).waitFor();
  await nav.getByRole('link', { name: 'Campaigns' }).waitFor();
  await page.context().close();
  const ivan = await office('/', { login: 'ivan' });
  const inav = ivan.getByRole('navigation', { name: 'Sections' });
  assert.equal(await inav.getByRole('link', { name: 'Segments' }).count(), 0);
  assert.equal(await inav.getByRole('link', { name: 'Campaigns' }).count(), 0);
  await ivan.context().close();
});

test('segments: the count follows the filter, a refusal names its field, saved and listed', async () => {
  const page = await office('/segments');
  await page.getByRole('heading', { name: 'Segments', level: 1 }).waitFor();
  const filter = page.getByLabel('Filter (JSON)');
  await filter.fill('{}');
  await page.getByText('Customers: 3').waitFor();
  await filter.fill(BUYERS);
  await page.getByText('Customers: 2').waitFor();
  const api = (await k.api('POST', '/v1/admin/segments/preview', { filter: JSON.parse(BUYERS) }, mia)).body;
  assert.equal(api.count, 2);
  for (const s of api.sample) await page.getByRole('link', { name: `#${s.customer}`, exact: true }).waitFor();
  await filter.fill('{"spend": {"min": "a lot"}}');
  await page.getByText(/filter\.spend\.min: must be a whole number/).waitFor();
  await filter.fill('{"spend": ');
  await page.getByText(/^Not JSON/).waitFor();
  await filter.fill(BUYERS);
  await page.getByText('Customers: 2').waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Buyers');
  await page.getByRole('button', { name: 'Save segment' }).click();
  await page.getByText('Segment “Buyers” saved: 2 customers.').waitFor();
  const table = page.getByRole('table', { name: 'Saved segments' });
  await table.getByRole('cell', { name: 'Buyers', exact: true }).waitFor();
  await checkA11y(page, 'the segments');
  await snap(page, 'office-segments');
  assertClean(page);
  await page.context().close();
});

test('campaigns: a draft previewed, started and run to the end', async () => {
  const segs = (await k.api('GET', '/v1/admin/segments', undefined, mia)).body.segments;
  if (!segs.some((g) => g.name === 'Buyers')) {
    const r = await k.api('POST', '/v1/admin/segments', { name: 'Buyers', filter: JSON.parse(BUYERS) }, mia);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  const page = await office('/campaigns');
  await page.getByRole('heading', { name: 'Campaigns', level: 1 }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Spring');
  await page.getByLabel('Segment', { exact: true }).selectOption({ label: 'Buyers' });
  await page.getByLabel('Points each').fill('500');
  await page.getByLabel('Control group, %').fill('0');
  await page.getByLabel('Subject (English)').fill('A gift');
  await page.getByLabel('Text (English)').fill('500 points for you, {{first_name}}!');
  await page.getByRole('button', { name: 'Create draft' }).click();
  await page.getByRole('heading', { name: 'Campaign “Spring”' }).waitFor();
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = page.getByRole('region', { name: 'Preview' });
  await preview.getByRole('heading', { name: 'Message: sms, en' }).waitFor();
  await preview.getByText('500 points for you, Anna!').first().waitFor();
  const list = (await k.api('GET', '/v1/admin/campaigns', undefined, mia)).body.campaigns;
  const id = list.find((c) => c.name === 'Spring').id;
  const p = (await k.api('POST', `/v1/admin/campaigns/${id}/preview`, undefined, mia)).body;
  assert.equal(p.targeted, 2);
  assert.deepEqual(p.limits.map((l) => l.rule), ['burn-labor-10', 'burn-labor-premium-50']);
  await checkA11y(page, 'a campaign\'s preview');
  await page.getByRole('button', { name: 'Start' }).click();
  await page.getByText('The campaign is scheduled').waitFor();
  await waitFor('the campaign done', async () =>
    (await k.api('GET', `/v1/admin/campaigns/${id}`, undefined, mia)).body.state === 'done', 20000);
  const done = (await k.api('GET', `/v1/admin/campaigns/${id}`, undefined, mia)).body;
  assert.equal(done.progress.granted, 2);
  assert.equal(done.granted, 1000);
  await page.getByRole('definition').filter({ hasText: /^done$/ }).waitFor();
  await page.getByRole('button', { name: 'Results' }).click();
  await page.getByRole('table', { name: 'Results' }).getByRole('cell', { name: 'Targeted' }).waitFor();
  await snap(page, 'office-campaigns');
  assertClean(page);
  await page.context().close();
});

test('campaigns: a grant by a program rule, its distribution and points spent and expired', async () => {
  const all = await k.api('POST', '/v1/admin/segments', { name: 'Everyone', filter: {} }, mia);
  assert.equal(all.status, 201, JSON.stringify(all.body));
  const page = await office('/campaigns');
  await page.getByRole('heading', { name: 'Campaigns', level: 1 }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Spend back');
  await page.getByLabel('Segment', { exact: true }).selectOption({ label: 'Everyone' });
  await page.getByLabel('Program rule (on: campaign)').fill('no-such');
  await page.getByLabel('Control group, %').fill('0');
  await page.getByRole('button', { name: 'Create draft' }).click();
  // Refused under its field, naming the rules allowed.
  await page.getByText(/no rule has id "no-such".*spend-back/).first().waitFor();
  await page.getByLabel('Program rule (on: campaign)').fill('spend-back');
  await page.getByRole('button', { name: 'Create draft' }).click();
  await page.getByRole('heading', { name: 'Campaign “Spend back”' }).waitFor();
  await page.getByText('by rule “spend-back” (“premium”), program version —').waitFor();
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = page.getByRole('region', { name: 'Preview' });
  await preview.getByRole('heading', { name: 'Distribution by rule “spend-back”' }).waitFor();
  const list = (await k.api('GET', '/v1/admin/campaigns', undefined, mia)).body.campaigns;
  const id = list.find((c) => c.name === 'Spend back').id;
  const p = (await k.api('POST', `/v1/admin/campaigns/${id}/preview`, undefined, mia)).body;
  // Customers 0 and 1 spent 3 000 roubles: 75 points each; customer 2 nothing.
  assert.deepEqual([p.grants, p.points, p.distribution.min, p.distribution.max, p.distribution.zero],
    [2, 150, 75, 75, 1]);
  await checkA11y(page, 'a preview by rule');
  await page.getByRole('button', { name: 'Start' }).click();
  await waitFor('the campaign by rule done', async () =>
    (await k.api('GET', `/v1/admin/campaigns/${id}`, undefined, mia)).body.state === 'done', 20000);
  await page.getByRole('definition').filter({ hasText: /^done$/ }).waitFor();
  await page.getByRole('button', { name: 'Results' }).click();
  const r = (await k.api('GET', `/v1/admin/campaigns/${id}/results`, undefined, mia)).body;
  assert.equal(r.points, 150);
  assert.equal(r.points_used, r.points_spent + r.points_expired);
  await page.getByText('Points spent').waitFor();
  await page.getByText('Points expired').waitFor();
  await checkA11y(page, 'results by rule');
  await snap(page, 'office-campaign-rule');
  assertClean(page);
  await page.context().close();
});

test('campaigns in Russian on a phone', async () => {
  const page = await office('/campaigns', { lang: 'ru', viewport: PHONE });
  await page.getByRole('heading', { name: 'Кампании', level: 1 }).waitFor();
  await page.getByRole('table', { name: 'Все кампании' }).getByRole('cell', { name: 'Spring', exact: true }).waitFor();
  await checkA11y(page, 'the campaigns in Russian');
  assertClean(page);
  await page.context().close();
});
