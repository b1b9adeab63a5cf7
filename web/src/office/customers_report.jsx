// customers_report.jsx: the Reports section's "Customers" view, from GET
// /v1/admin/reports/customers (docs/api.md): tiers now as bars and the
// period's moves, the RFM R x F grid as a heat map named by segment with the
// segments' table, the cohort triangle (retention by month of joining, a
// table with shaded cells), and purchases before and after joining as bars.
// Every figure is also written as text, so nothing is only a colour.
// WindowField is the report form's `window` control (the months compared
// before and after joining, 1 to 24; the route's default 6).
import { Field } from '../lib/ui.jsx';
import { makeT, useLang, money, number, percent } from '../lib/i18n.js';
import { monthWords } from './analytics.js';
import { ScrollTable } from './people.jsx';
import { strings } from './customers_report.strings.js';
import './customers_report.css';

const t = makeT(strings);

/* The accent green mixed into white: share 0..1 -> a background. */
const shade = (share) => {
  const a = Math.max(0, Math.min(1, Number(share) || 0)) * 0.55;
  const mix = (c) => Math.round(255 - (255 - c) * a);
  return `rgb(${mix(11)}, ${mix(110)}, ${mix(79)})`;
};

function Figure({ label, value, hint }) {
  return (
    <div class="card">
      <div class="figure-label">{label}</div>
      <div class="figure">{value}</div>
      {hint && <div class="hint">{hint}</div>}
    </div>
  );
}

/* Horizontal bars: rows [{label, value, text, alt}] scaled to the largest. */
function Bars({ rows, label }) {
  const max = Math.max(0, ...rows.map((r) => Number(r.value) || 0));
  return (
    <ul class="bars" aria-label={label}>
      {rows.map((r) => (
        <li key={r.label}>
          <span>{r.label}</span>
          <span class="track" aria-hidden="true">
            <span class={'fill' + (r.alt ? ' alt' : '')} style={{ width: max > 0 ? `${(100 * (Number(r.value) || 0)) / max}%` : '0%', display: 'block' }} />
          </span>
          <span class="val">{r.text}</span>
        </li>
      ))}
    </ul>
  );
}

/* The route's window: 1..24 months, 6 when not given (docs/api.md). */
export const WINDOW_DEFAULT = '6';
const WINDOW_MAX = 24;

/* The form's control for the window, a choice of 1 to 24 months (nothing
 * else can be sent); the server's refusal, if any, under it. */
export function WindowField({ value, onInput, error }) {
  useLang();
  return (
    <Field label={t('window')} name="window" kind="select" value={value} error={error} onInput={onInput}>
      {Array.from({ length: WINDOW_MAX }, (_, i) => (
        <option value={String(i + 1)} key={i}>{t(i === 0 ? 'windowOne' : 'windowN', { n: number(i + 1) })}</option>
      ))}
    </Field>
  );
}

const tierWord = (name) => (name ? name : t('noTier'));

function Tiers({ tiers }) {
  const accounts = tiers.accounts || [];
  const moves = tiers.moves || [];
  return (
    <section class="pair" aria-label={t('tiersNow')}>
      <div class="card">
        <h3>{t('tiersNow')}</h3>
        {accounts.length ? (
          <Bars label={t('tiersNow')} rows={accounts.map((a) => ({ label: tierWord(a.tier), value: a.accounts, text: number(a.accounts) }))} />
        ) : <p class="muted">{t('noTiers')}</p>}
      </div>
      <div class="card">
        <h3>{t('moves')}</h3>
        <div class="grid figures even">
          <Figure label={t('movesUp')} value={number(tiers.up)} />
          <Figure label={t('movesDown')} value={number(tiers.down)} />
        </div>
        <ScrollTable label={t('moves')} caption={t('moves')} rows={moves} empty={t('noMoves')} columns={[
          { key: 'from', label: t('moveFrom'), render: (m) => tierWord(m.from) },
          { key: 'to', label: t('moveTo'), render: (m) => tierWord(m.to) },
          { key: 'direction', label: t('direction'), render: (m) => (m.direction === 'up' ? '↑ ' : m.direction === 'down' ? '↓ ' : '') + t(m.direction) },
          { key: 'moves', label: t('count'), num: true, render: (m) => number(m.moves) },
        ]} />
      </div>
    </section>
  );
}

function Rfm({ rfm }) {
  const grid = rfm.grid || [];
  const names = rfm.grid_segments || [];
  const max = Math.max(0, ...grid.flat().map(Number));
  const c = rfm.cutoffs || {};
  const list = (a, f) => (a || []).map(f).join(' · ');
  return (
    <section class="card" aria-labelledby="rfm-h">
      <h3 id="rfm-h">{t('rfm')}</h3>
      <div class="grid figures even">
        <Figure label={t('rfmMembers')} value={number(rfm.members)} hint={t('rfmHint')} />
      </div>
      <div class="scroll" tabIndex={0} role="region" aria-label={t('grid')}>
        <table class="heat">
          <caption>{t('grid')}</caption>
          <thead>
            <tr>
              <td />
              {[1, 2, 3, 4, 5].map((f) => <th scope="col" key={f}>{t('frequencyScore', { f })}</th>)}
            </tr>
          </thead>
          <tbody>
            {[5, 4, 3, 2, 1].map((r) => (
              <tr key={r}>
                <th scope="row">{t('recencyScore', { r })}</th>
                {[1, 2, 3, 4, 5].map((f) => {
                  const n = Number((grid[r - 1] || [])[f - 1]) || 0;
                  return (
                    <td key={f} style={{ background: shade(max ? n / max : 0) }}>
                      <strong>{number(n)}</strong>
                      {t(((names[r - 1] || [])[f - 1]) || '')}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="hint">{t('gridHint')}</p>
      <ScrollTable label={t('rfm')} caption={t('rfm')} rows={rfm.segments || []} columns={[
        { key: 'segment', label: t('segment'), render: (s) => t(s.segment) },
        { key: 'members', label: t('members'), num: true, render: (s) => number(s.members) },
        { key: 'revenue', label: t('revenue'), num: true, render: (s) => money(s.revenue_minor) },
        { key: 'r', label: t('meanRecency'), num: true, render: (s) => (s.members ? number(s.mean_recency_days, 1) : '—') },
        { key: 'f', label: t('meanFrequency'), num: true, render: (s) => (s.members ? number(s.mean_frequency, 2) : '—') },
        { key: 'm', label: t('meanMonetary'), num: true, render: (s) => (s.members ? money(s.mean_monetary_minor) : '—') },
      ]} />
      {rfm.members > 0 && (
        <p class="hint">{t('cutoffs', { r: list(c.recency_days, (v) => number(v)), f: list(c.frequency, (v) => number(v)), m: list(c.monetary_minor, (v) => money(v)) })}</p>
      )}
    </section>
  );
}

function Cohorts({ cohorts }) {
  const span = cohorts.length;
  return (
    <section class="card" aria-labelledby="cohorts-h">
      <h3 id="cohorts-h">{t('cohorts')}</h3>
      <p class="hint">{t('cohortsHint')}</p>
      <div class="scroll" tabIndex={0} role="region" aria-label={t('cohorts')}>
        <table class="triangle">
          <thead>
            <tr>
              <th scope="col">{t('cohort')}</th>
              <th scope="col" class="num">{t('size')}</th>
              {Array.from({ length: span }, (_, n) => <th scope="col" class="num" key={n}>{t('monthN', { n })}</th>)}
            </tr>
          </thead>
          <tbody>
            {cohorts.map((c) => (
              <tr key={c.month}>
                <th scope="row">{monthWords(c.month)}</th>
                <td>{number(c.members)}</td>
                {Array.from({ length: span }, (_, n) => (n < (c.share || []).length ? (
                  <td key={n} style={{ background: shade(c.members ? c.share[n] : 0) }} title={number(c.active[n])}>
                    {c.members ? percent(c.share[n], 0) : '—'}
                  </td>
                ) : <td key={n} class="off" />))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function BeforeAfter({ ba }) {
  const b = ba.before || {};
  const a = ba.after || {};
  return (
    <section class="card" aria-labelledby="ba-h">
      <h3 id="ba-h">{t('beforeAfter')}</h3>
      <p class="hint">{t('beforeAfterHint', { n: ba.window_months, followed: number(ba.followed), members: number(ba.members) })}</p>
      {ba.followed > 0 ? (
        <div class="pair">
          <div>
            <h3>{t('frequency')}</h3>
            <Bars label={t('frequency')} rows={[
              { label: t('before'), value: b.receipts_per_month, text: number(b.receipts_per_month, 2), alt: true },
              { label: t('after'), value: a.receipts_per_month, text: number(a.receipts_per_month, 2) },
            ]} />
          </div>
          <div>
            <h3>{t('avgReceipt')}</h3>
            <Bars label={t('avgReceipt')} rows={[
              { label: t('before'), value: b.average_receipt_minor, text: money(b.average_receipt_minor), alt: true },
              { label: t('after'), value: a.average_receipt_minor, text: money(a.average_receipt_minor) },
            ]} />
          </div>
        </div>
      ) : <p class="muted">{t('nobodyFollowed')}</p>}
    </section>
  );
}

export function CustomersReport({ d }) {
  useLang();
  return (
    <>
      <Tiers tiers={d.tiers || {}} />
      <Rfm rfm={d.rfm || {}} />
      <Cohorts cohorts={d.cohorts || []} />
      <BeforeAfter ba={d.before_after || {}} />
    </>
  );
}
