// reports.jsx: the back office's reports (#/reports, report.read), from
// GET /v1/admin/reports/{name} for a period and a store: points (issued,
// burnt, expired, outstanding by kind, the liability by expiry month,
// breakage and redemption rates, the program's cost) as figures, charts
// with their tables; members and non-members (the four figures of seeds
// 000 and 001 beside their claims, bars of members against non-members,
// a tier); and a CSV download (the same query with format=csv).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, useLang, money, points, number, percent, date } from '../lib/i18n.js';
import { Alert, Button, Field, useLoad, useRoute } from '../lib/ui.jsx';
import { expiring, isoDay, monthStart } from '../lib/action.js';
import { MonthChart } from '../lib/chart.jsx';
import { monthAxes, column, otherScalars, monthWords } from './analytics.js';
import '../lib/data.css';
import './analytics.css';
import { ScrollTable } from './people.jsx';
import { strings } from './reports.strings.js';
import { CustomersReport, WindowField, WINDOW_DEFAULT } from './customers_report.jsx';

const t = makeT(strings);
/* The reports the server answers (docs/api.md, "Reports"): the customers
 * report of issue 12 joins this list with its route. */
const KINDS = ['points', 'members', 'customers'];
/* A word of the dictionary for a server's name (segment, kind), else the name. */
const word = (name) => (name && strings.en[name] ? t(name) : name || '—');

function Figure({ label, value, hint }) {
  return (
    <div class="card">
      <div class="figure-label">{label}</div>
      <div class="figure">{value}</div>
      {hint && <div class="hint">{hint}</div>}
    </div>
  );
}

/* The query of a report: from, to, store, tier, currency and window when given, format. */
export function reportQuery(p, format) {
  const q = new URLSearchParams({ from: p.from, to: p.to });
  if (p.store) q.set('store', p.store);
  if (p.tier) q.set('tier', p.tier);
  if (p.currency) q.set('currency', p.currency);
  if (p.window) q.set('window', p.window);
  if (format) q.set('format', format);
  return q.toString();
}

/* Fields the server added that this page has no words for, under their names. */
function More({ obj, known }) {
  const rows = otherScalars(obj, known);
  if (!rows.length) return null;
  return (
    <details class="card">
      <summary>{t('more')}</summary>
      <ScrollTable label={t('more')} rows={rows} columns={[
        { key: 'key', label: t('key'), render: (r) => <code>{r.key}</code> },
        { key: 'value', label: t('value'), num: true, render: (r) => (typeof r.value === 'number' ? number(r.value, 4) : r.value) },
      ]} />
    </details>
  );
}


function byExpiryMonth(schedule) {
  const m = new Map();
  for (const r of schedule) if (/^\d{4}-\d{2}$/.test(r.month)) m.set(r.month, (m.get(r.month) || 0) + (Number(r.points) || 0));
  return [...m.keys()].sort().map((month) => ({ month, points: m.get(month) }));
}

function Points({ d }) {
  const byMonth = d.by_month || [];
  const schedule = d.schedule || [];
  const months = byExpiryMonth(schedule);
  const mpp = Number(d.minor_per_point) || 0;
  /* Money in the report's currency (its accounts' points, at its value). */
  const cash = (minor) => money(minor, d.currency || 'RUB');
  const m = monthAxes(byMonth);
  const s = monthAxes(months);
  return (
    <>
      <div class="grid figures even">
        <Figure label={t('issued')} value={points(d.issued)} />
        <Figure label={t('burnt')} value={points(d.burnt)} />
        <Figure label={t('expired')} value={points(d.expired)} />
        <Figure label={t('adjusted')} value={points(d.adjusted)} />
        <Figure label={t('outstanding')} value={points(d.outstanding)} hint={t('outstandingHint')} />
        <Figure label={t('liabilityMoney')} value={cash(d.liability_minor)} />
      </div>
      <div class="grid figures even">
        <Figure label={t('breakage')} value={percent(d.breakage_rate, 2)} hint={t('breakageHint')} />
        <Figure label={t('redemption')} value={percent(d.redemption_rate, 2)} hint={t('redemptionHint')} />
        <Figure label={t('costShare')} value={percent(d.cost_share, 2)} hint={t('costShareHint')} />
        {d.cost_share_of_total != null && (
          <Figure label={t('costShareTotal')} value={percent(d.cost_share_of_total, 2)}
            hint={t('costShareTotalHint', { revenue: cash(d.total_revenue_minor) })} />
        )}
        <Figure label={t('cost')} value={cash(d.cost_minor)} hint={t('costHint', { revenue: cash(d.members_revenue_minor) })} />
        <Figure label={t('costRetained')} value={cash(d.cost_per_retained_minor)}
          hint={d.retained == null ? undefined : t('retainedHint', { retained: number(d.retained), buyers: number(d.buyers) })} />
      </div>
      <div class="chart-pair">
        {byMonth.length > 0 && (
          <MonthChart fromZero title={t('byMonth')} tableLabel={t('asTable', { title: t('byMonth') })} monthLabel={t('month')}
            labels={m.labels} ticks={m.ticks}
            series={[
              { label: t('issued'), values: column(byMonth, 'issued'), format: points },
              { label: t('burnt'), values: column(byMonth, 'burnt'), format: points },
              { label: t('expired'), values: column(byMonth, 'expired'), format: points },
            ]} />
        )}
        {months.length > 0 && (
          <MonthChart fromZero title={t('schedule')} tableLabel={t('asTable', { title: t('schedule') })} monthLabel={t('expiryMonth')}
            labels={s.labels} ticks={s.ticks}
            series={[{ label: t('outstanding'), values: column(months, 'points'), format: points, bars: true }]}
            extra={mpp ? [{ key: 'liability', label: t('liability'), values: months.map((r) => r.points * mpp), format: cash }] : []} />
        )}
      </div>
      <ScrollTable label={t('scheduleByKind')} caption={t('scheduleByKind')} rows={schedule} empty={t('none')} columns={[
        { key: 'kind', label: t('kind') },
        { key: 'month', label: t('expiryMonth'), render: (r) => (r.month === 'never' ? t('never') : monthWords(r.month)) },
        { key: 'points', label: t('outstanding'), num: true, render: (r) => points(r.points) },
        { key: 'lots', label: t('lots'), num: true, render: (r) => number(r.lots) },
        ...(mpp ? [{ key: 'money', label: t('liability'), num: true, render: (r) => cash(Number(r.points) * mpp) }] : []),
      ]} />
      <More obj={d} known={['from', 'to', 'store', 'currency', 'tier', 'issued', 'burnt', 'expired', 'adjusted', 'outstanding',
        'minor_per_point', 'liability_minor', 'breakage_rate', 'redemption_rate', 'members_revenue_minor', 'cost_minor',
        'cost_share', 'total_revenue_minor', 'cost_share_of_total', 'buyers', 'retained', 'cost_per_retained_minor']} />
    </>
  );
}


/* One of the four figures: the value big, what it is, and the seed's claim
 * beside it (the figure the seed reported, for comparison). */
function Claim({ label, value, detail, claim, source }) {
  return (
    <div class="card claim">
      <div class="figure-label">{label}</div>
      <div class="figure">{value}</div>
      {detail && <div class="hint">{detail}</div>}
      <p class="claim-seed"><span class="claim-source">{source}</span> {claim}</p>
    </div>
  );
}

/* Members against non-members, one measure: two bars scaled to the larger,
 * each with its value as text (what a screen reader reads). */
function PairBars({ title, members, nonMembers, format }) {
  const a = Math.max(0, Number(members) || 0);
  const b = Math.max(0, Number(nonMembers) || 0);
  const top = Math.max(a, b, 1);
  const rows = [[t('membersShort'), a, 'bar-members'], [t('nonMembersShort'), b, 'bar-non']];
  return (
    <figure class="pair-bars">
      <figcaption>{title}</figcaption>
      <dl>
        {rows.map(([label, v, cls]) => (
          <div class="pair-row" key={cls}>
            <dt>{label}</dt>
            <dd class="track" aria-hidden="true"><span class={'bar ' + cls} style={{ width: `${(100 * v) / top}%` }} /></dd>
            <dd class="bar-value">{format(v)}</dd>
          </div>
        ))}
      </dl>
    </figure>
  );
}

const MEMBERS_KNOWN = ['from', 'to', 'store', 'tier', 'recent_since', 'returns_subtracted', 'average_receipt_ratio', 'top_share',
  'idle_share', 'idle_revenue_share', 'recent_share', 'members', 'member_receipts', 'member_revenue_minor',
  'member_average_receipt_minor', 'nonmember_receipts', 'nonmember_revenue_minor', 'nonmember_average_receipt_minor',
  'followed_receipts', 'followed_revenue_minor', 'followed_customers', 'unfollowed_receipts', 'unfollowed_revenue_minor',
  'followed_receipts_share', 'followed_revenue_share', 'top_customers', 'top_revenue_minor', 'top_threshold_minor',
  'idle_members', 'idle_revenue_minor', 'members_before', 'members_recent', 'total_receipts', 'total_revenue_minor'];

function Members({ d }) {
  return (
    <>
      <div class="grid figures even claims">
        <Claim label={t('ratio')} value={t('times', { n: number(d.average_receipt_ratio, 2) })}
          detail={t('ratioDetail', { m: money(d.member_average_receipt_minor), n: money(d.nonmember_average_receipt_minor) })}
          source={t('seed000')} claim={t('claimRatio')} />
        <Claim label={t('top10')} value={percent(d.top_share, 1)}
          detail={t('topDetail', { k: number(d.top_customers), n: number(d.followed_customers), c: percent(d.followed_receipts_share, 1) })}
          source={t('seed000')} claim={t('claimTop')} />
        <Claim label={t('low')} value={percent(d.idle_share, 1)}
          detail={t('lowDetail', { k: number(d.idle_members), n: number(d.members), r: percent(d.idle_revenue_share, 1) })}
          source={t('seed000')} claim={t('claimLow')} />
        <Claim label={t('active12')} value={percent(d.recent_share, 1)}
          detail={t('activeDetail', { k: number(d.members_recent), n: number(d.members_before), since: date(d.recent_since) })}
          source={t('seed001')} claim={t('claimActive')} />
      </div>
      <div class="chart-trio">
        <PairBars title={t('avgReceipt')} members={d.member_average_receipt_minor} nonMembers={d.nonmember_average_receipt_minor} format={money} />
        <PairBars title={t('revenue')} members={d.member_revenue_minor} nonMembers={d.nonmember_revenue_minor} format={money} />
        <PairBars title={t('receipts')} members={d.member_receipts} nonMembers={d.nonmember_receipts} format={(v) => number(v)} />
      </div>
      <p class="muted">{t('membersNote', {
        total: money(d.total_revenue_minor),
        u: number(d.unfollowed_receipts),
        um: money(d.unfollowed_revenue_minor),
      })}</p>
      <More obj={d} known={MEMBERS_KNOWN} />
    </>
  );
}

const VIEWS = { points: Points, members: Members, customers: CustomersReport };

export function Reports({ onExpired }) {
  useLang();
  const route = useRoute();
  const kind = KINDS.includes(route.query.get('r')) ? route.query.get('r') : 'points';
  const [form, setForm] = useState({ from: monthStart(11), to: isoDay(), store: '', tier: '', currency: '', window: WINDOW_DEFAULT });
  const [shown, setShown] = useState(form);
  /* The points report has no tier (a lot's points are not a tier's); only
   * the customers report has a window; only the points report is of one
   * currency (docs/coalition.md "Currencies"; empty: the program's own). */
  const asked = {
    ...shown, tier: kind === 'points' ? '' : shown.tier, window: kind === 'customers' ? shown.window : '',
    currency: kind === 'points' ? shown.currency : '',
  };
  const q = reportQuery(asked);
  const data = useLoad(expiring(onExpired, () => api('GET', `/v1/admin/reports/${kind}?` + q)), [kind, q]);
  const errs = data.error ? data.error.byField() : {};
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const resultRef = useRef(null);
  const d = data.data;
  const View = VIEWS[kind];
  useEffect(() => {
    if (d && resultRef.current && document.activeElement && document.activeElement.closest('form')) resultRef.current.focus();
  }, [d]);
  return (
    <>
      <h1>{t('title')}</h1>
      {KINDS.length > 1 && (
        <nav class="subtabs" aria-label={t('which')}>
          {KINDS.map((k) => (
            <a href={'#/reports?r=' + k} aria-current={k === kind ? 'page' : undefined} key={k}>{t(k)}</a>
          ))}
        </nav>
      )}
      <form class="card" aria-label={t('filters')}
        onSubmit={(e) => {
          e.preventDefault();
          setShown({ ...form, store: form.store.trim(), tier: form.tier.trim(), currency: form.currency.trim().toUpperCase() });
        }}>
        <div class="row">
          <Field label={t('from')} name="from" type="date" value={form.from} required onInput={set('from')} error={errs.from} />
          <Field label={t('to')} name="to" type="date" value={form.to} required onInput={set('to')} error={errs.to} />
          <Field label={t('store')} name="store" value={form.store} onInput={set('store')} error={errs.store} />
          {kind !== 'points' && (
            <Field label={t('tier')} name="tier" value={form.tier} onInput={set('tier')} error={errs.tier} />
          )}
          {kind === 'points' && (
            <Field label={t('currency')} name="currency" value={form.currency} onInput={set('currency')} error={errs.currency}
              hint={t('currencyHint')} />
          )}
          {kind === 'customers' && <WindowField value={form.window} onInput={set('window')} error={errs.window} />}
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
        <section aria-labelledby="report-h">
          <div class="row report-head">
            <h2 id="report-h" ref={resultRef} tabIndex={-1}>
              {t(kind)}{kind === 'points' && d.currency ? ' · ' + d.currency : ''} ·{' '}
              {t('period', { from: date(shown.from), to: date(shown.to) })} ·{' '}
              {shown.store ? t('inStore', { store: shown.store }) : t('allStores')}
              {shown.tier && kind !== 'points' ? ' · ' + t('tier') + ' ' + shown.tier : ''}
            </h2>
            <a class="btn btn-secondary" href={`/v1/admin/reports/${kind}?` + reportQuery(asked, 'csv')} download={`${kind}.csv`}>
              {t('csv', { name: t(kind) })}
            </a>
          </div>
          <View d={d} />
        </section>
      )}
    </>
  );
}
