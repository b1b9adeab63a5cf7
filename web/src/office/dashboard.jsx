// dashboard.jsx: the back office's dashboard (#/): the program's main
// figures for a period and a store (GET /v1/admin/dashboard: members, the
// active share, points issued, burnt, expired and outstanding, the
// liability in money) and charts by month, each with its table.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, useLang, money, points, number, percent, date, getLang } from '../lib/i18n.js';
import { Alert, Button, Field, useLoad } from '../lib/ui.jsx';
import { expiring, isoDay, monthStart } from '../lib/action.js';
import { MonthChart } from '../lib/chart.jsx';
import '../lib/data.css';
import { strings } from './dashboard.strings.js';

const t = makeT(strings);

/* Every month "YYYY-MM" from the month of `from` to that of `to`. */
function monthsOf(from, to) {
  const out = [];
  let [y, m] = from.slice(0, 7).split('-').map(Number);
  const [ty, tm] = to.slice(0, 7).split('-').map(Number);
  while ((y < ty || (y === ty && m <= tm)) && out.length < 48) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    if (++m > 12) {
      m = 1;
      y++;
    }
  }
  return out;
}

/* "2026-10" as "Oct 2026", or (short, for an axis) "Oct" except in January
 * and on the first month shown. */
function monthLabel(month, short = false, first = false) {
  const [y, m] = month.split('-').map(Number);
  return new Intl.DateTimeFormat(getLang() === 'ru' ? 'ru-RU' : 'en-GB', {
    month: 'short',
    year: short && m !== 1 && !first ? undefined : 'numeric',
    timeZone: 'UTC',
  }).format(new Date(Date.UTC(y, m - 1, 1)));
}

function Figure({ label, value, hint }) {
  return (
    <div class="card">
      <div class="figure-label">{label}</div>
      <div class="figure">{value}</div>
      {hint && <div class="hint">{hint}</div>}
    </div>
  );
}

function query(p) {
  const q = new URLSearchParams({ from: p.from, to: p.to });
  if (p.store) q.set('store', p.store);
  return q.toString();
}

export function Dashboard({ me, onExpired }) {
  useLang();
  const [form, setForm] = useState({ from: monthStart(11), to: isoDay(), store: '' });
  const [shown, setShown] = useState(form);
  const data = useLoad(expiring(onExpired, () => api('GET', '/v1/admin/dashboard?' + query(shown))), [query(shown)]);
  const stores = useLoad(
    () =>
      me.permissions.includes('terminals')
        ? api('GET', '/v1/admin/terminals?limit=1000').then((r) => [...new Set(r.terminals.map((x) => x.store))])
        : Promise.resolve([]),
    [],
  );
  const errs = data.error ? data.error.byField() : {};
  const d = data.data;
  const months = monthsOf(shown.from, shown.to);
  const byMonth = new Map(((d && d.by_month) || []).map((r) => [r.month, r]));
  const col = (key) => months.map((m) => (byMonth.get(m) ? Number(byMonth.get(m)[key]) || 0 : 0));
  const labels = months.map((m) => monthLabel(m));
  const ticks = months.map((m, i) => monthLabel(m, true, i === 0));
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });

  return (
    <>
      <h1>{t('title')}</h1>
      <form
        class="card"
        aria-label={t('period')}
        onSubmit={(e) => {
          e.preventDefault();
          setShown({ ...form, store: form.store.trim() });
        }}
      >
        <div class="row">
          <Field label={t('from')} name="from" type="date" value={form.from} required onInput={set('from')} error={errs.from} />
          <Field label={t('to')} name="to" type="date" value={form.to} required onInput={set('to')} error={errs.to} />
          <Field label={t('store')} name="store" value={form.store} onInput={set('store')} list="dashboard-stores"
            error={errs.store} />
          <datalist id="dashboard-stores">
            {(stores.data || []).map((s) => (
              <option value={s} key={s} />
            ))}
          </datalist>
          <div class="actions field-actions">
            <Button type="submit" busy={data.loading}>{t('show')}</Button>
          </div>
        </div>
      </form>
      <Alert kind="error">{data.error && data.error.message}</Alert>
      {/* The last answer goes while the next loads: figures never sit under
          another period's or store's heading. */}
      {data.loading && <p class="muted" role="status">{t('loading')}</p>}
      {d && !data.loading && (
        <>
          <h2>
            {t('figures', { from: date(shown.from), to: date(shown.to) })} ·{' '}
            {shown.store ? t('inStore', { store: shown.store }) : t('allStores')}
          </h2>
          <div class="grid figures">
            <Figure label={t('members')} value={number(d.members)} />
            <Figure label={t('membersActive')} value={number(d.members_active)} hint={t('activeHint')} />
            <Figure label={t('activeShare')} value={percent(d.active_share)} />
            <Figure label={t('liability')} value={money(d.liability_minor)} hint={t('liabilityHint')} />
          </div>
          <div class="grid figures">
            <Figure label={t('issued')} value={points(d.points.issued)} />
            <Figure label={t('burnt')} value={points(d.points.burnt)} />
            <Figure label={t('expired')} value={points(d.points.expired)} />
            <Figure label={t('adjusted')} value={points(d.points.adjusted)} />
            <Figure label={t('outstanding')} value={points(d.points.outstanding)} />
          </div>
          <div class="chart-pair">
            <MonthChart
              title={t('chartPoints')}
              tableLabel={t('asTable', { title: t('chartPoints') })}
              monthLabel={t('month')}
              labels={labels}
              ticks={ticks}
              series={[
                { label: t('issued'), values: col('issued'), format: points },
                { label: t('burnt'), values: col('burnt'), format: points },
                { label: t('expired'), values: col('expired'), format: points },
              ]}
            />
            <MonthChart
              title={t('chartBuys')}
              tableLabel={t('asTable', { title: t('chartBuys') })}
              monthLabel={t('month')}
              labels={labels}
              ticks={ticks}
              series={[
                { label: t('purchases'), values: col('purchases'), format: number, bars: true },
                { label: t('newMembers'), values: col('new_members'), format: number },
              ]}
              extra={[{ key: 'revenue', label: t('revenue'), values: col('revenue_minor'), format: money }]}
            />
          </div>
        </>
      )}
    </>
  );
}
