// simulate.jsx: the back office's program model (#/simulate, program.read):
// a candidate program (a file or pasted JSON), an optional program to
// compare with (empty: the running one; one button fills in the
// cumulative discount of examples/), a redemption share and a period start
// a replay of the database's sales history (POST /v1/admin/simulations),
// whose progress is polled (GET /v1/admin/simulations/{id}); its result is
// shown month by month beside the program compared with — charts with
// their tables, totals side by side, the rules that cost most, and the
// discount alternative when that is what was compared.
// The result read is kopilka simulate --json's (src/service/simulate.c,
// kp_sim_json): {candidate, baseline|null}, each {receipts, cards,
// skipped, minor_per_point, months: [{month, ...}], rules: [{rule, kind,
// points, points_minor, discount_minor, points_returned,
// discount_returned_minor}], tier_changes, tiers: [{tier|null, cards}],
// birthday_grants, tenure_grants, cards_without_birthday,
// cards_joined_unknown, total} with the figures
// receipts, revenue_minor, member_revenue_minor, discount_minor,
// points_paid_minor, issued, burnt, expired, liability, liability_minor,
// cost_minor, cost_share_bp, accrued_cost_minor, margin_impact_bp. An empty
// "compare with" sends the running program as the baseline.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, useLang, money, points, number, percent } from '../lib/i18n.js';
import { Alert, Button, Field } from '../lib/ui.jsx';
import { useAction } from '../lib/action.js';
import { MonthChart } from '../lib/chart.jsx';
import { monthAxes, column } from './analytics.js';
import discountProgram from '../../../examples/cumulative-discount.json';
import '../lib/data.css';
import './analytics.css';
import { ScrollTable } from './people.jsx';
import { parseProgram } from './programs.jsx';
import { strings } from './simulate.strings.js';

const t = makeT(strings);
const POLL_MS = 400;

/* Text as a program object, or {error} (programs.jsx's words). Empty
 * text is {} when optional. */
function programOf(text, optional) {
  return optional && !text.trim() ? {} : parseProgram(text);
}

/* The server's error for field `name` or one inside it ("program.rules[1]
 * .percent" is the candidate's), with the inner path before its message. */
function fieldError(err, name) {
  if (!err || !err.byField) return undefined;
  const m = err.byField();
  const k = Object.keys(m).find((f) => f === name || f.startsWith(name + '.') || f.startsWith(name + '['));
  return k === undefined ? undefined : k === name ? m[k] : `${k.slice(name.length + 1)}: ${m[k]}`;
}
const FIELDS = ['program', 'baseline', 'redemption', 'from', 'to'];

/* A run's progress as a share 0..1 (a number, or {done, total}). */
function share(p) {
  if (typeof p === 'number') return p > 1 ? p / 100 : p;
  if (p && typeof p === 'object' && Number(p.total) > 0) return Number(p.done) / Number(p.total);
  return 0;
}

const bp = (v) => (v == null ? null : Number(v) / 10000);
const pct2 = (v) => percent(v, 2);

/* The figures of the totals table: [label, value of a month or total, format]. */
const FIGURES = [
  ['receipts', (m) => m.receipts, number],
  ['revenue', (m) => m.revenue_minor, money],
  ['memberRevenue', (m) => m.member_revenue_minor, money],
  ['issued', (m) => m.issued, points],
  ['burnt', (m) => m.burnt, points],
  ['expired', (m) => m.expired, points],
  ['liability', (m) => m.liability, points],
  ['liabilityMoney', (m) => m.liability_minor, money],
  ['discount', (m) => m.discount_minor, money],
  ['pointsPaid', (m) => m.points_paid_minor, money],
  ['cost', (m) => m.cost_minor, money],
  ['costShare', (m) => bp(m.cost_share_bp), pct2],
  ['accrued', (m) => m.accrued_cost_minor, money],
  ['margin', (m) => bp(m.margin_impact_bp), pct2],
];

/* The tiers and grants table: rows of [label, candidate, baseline] for the
 * tier changes, the cards in each tier at the end (tiers of either side,
 * candidate's order first; null = no tier) and the scheduler's grants;
 * a row only when either side has it (a program without tiers or grants
 * has none). */
function tierGrantRows(cand, base) {
  const rows = [];
  const has = (k) => Number(cand[k]) > 0 || (base && Number(base[k]) > 0);
  const tiers = (x) => new Map(((x && x.tiers) || []).map((r) => [r.tier, r.cards]));
  const ct = tiers(cand);
  const bt = tiers(base);
  if (ct.size || bt.size || has('tier_changes')) {
    rows.push({ key: 'changes', label: t('tierChanges'), c: cand.tier_changes, b: base && base.tier_changes });
    for (const name of [...new Set([...ct.keys(), ...bt.keys()])]) {
      rows.push({ key: 'tier:' + name, label: name == null ? t('noTier') : t('tierCards', { tier: name }),
        c: ct.get(name) ?? (ct.size ? 0 : null), b: base ? bt.get(name) ?? (bt.size ? 0 : null) : null });
    }
  }
  for (const [k, label] of [['birthday_grants', 'birthdayGrants'], ['tenure_grants', 'tenureGrants'],
    ['cards_without_birthday', 'withoutBirthday'], ['cards_joined_unknown', 'joinedUnknown']]) {
    if (has(k)) rows.push({ key: k, label: t(label), c: cand[k], b: base && base[k] });
  }
  return rows;
}

function ProgramInput({ label, fileLabel, textLabel, hint, text, setText, error, children }) {
  async function pick(ev) {
    const f = ev.currentTarget.files && ev.currentTarget.files[0];
    if (f) setText(await f.text());
  }
  return (
    <fieldset>
      <legend>{label}</legend>
      <Field label={fileLabel} type="file" accept=".json,application/json" hint={t('fileHint')} onChange={pick} />
      {children}
      <Field label={textLabel} kind="textarea" rows={8} spellcheck={false} value={text} hint={hint} error={error}
        onInput={(e) => setText(e.currentTarget.value)} />
    </fieldset>
  );
}

function Results({ result, baseName }) {
  const cand = result.candidate || {};
  const base = result.baseline || null;
  const months = cand.months || [];
  const baseMonths = new Map(((base && base.months) || []).map((m) => [m.month, m]));
  const aligned = months.map((m) => baseMonths.get(m.month) || {});
  const { labels, ticks } = monthAxes(months);
  const ct = cand.total || {};
  const bt = (base && base.total) || {};
  const rows = FIGURES.map(([label, get, fmt]) => ({ label: t(label), c: get(ct), b: get(bt), fmt }))
    .filter((r) => r.c != null || r.b != null);
  const costOf = (r) => (Number(r.points_minor) || 0) + (Number(r.discount_minor) || 0);
  const rules = [...(cand.rules || [])].sort((a, b) => costOf(b) - costOf(a));
  const ruleTotal = rules.reduce((s, r) => s + costOf(r), 0);
  const discount = base && (Number(bt.discount_minor) > 0 || Number(ct.discount_minor) > 0);
  const tierRows = tierGrantRows(cand, base);
  const unknownBirthdays = Number(cand.cards_without_birthday) || 0;
  const unknownJoined = Number(cand.cards_joined_unknown) || 0;
  const returned = rules.some((r) => Number(r.points_returned) || Number(r.discount_returned_minor));
  const num = (v) => (v == null ? '—' : number(v));
  const pair = (get, fmt) => [
    { label: t('cand'), values: months.map((m) => Number(get(m)) || 0), format: fmt },
    ...(base ? [{ label: baseName, values: aligned.map((m) => Number(get(m)) || 0), format: fmt }] : []),
  ];
  return (
    <>
      <Alert kind="ok">{t('done', { receipts: number(cand.receipts), cards: number(cand.cards) })}</Alert>
      {Number(cand.skipped) > 0 && <Alert kind="info">{t('skipped', { n: number(cand.skipped) })}</Alert>}
      <h3>{t('totals')}</h3>
      <ScrollTable label={t('totals')} rows={rows} columns={[
        { key: 'label', label: t('measure') },
        { key: 'c', label: t('cand'), num: true, render: (r) => r.fmt(r.c) },
        ...(base ? [
          { key: 'b', label: baseName, num: true, render: (r) => r.fmt(r.b) },
          { key: 'd', label: t('diff'), num: true,
            render: (r) => (r.c == null || r.b == null ? '—' : r.fmt(Number(r.c) - Number(r.b))) },
        ] : []),
      ]} />
      {tierRows.length > 0 && (
        <section aria-labelledby="tiers-h">
          <h3 id="tiers-h">{t('tiersGrants')}</h3>
          <ScrollTable label={t('tiersGrants')} rows={tierRows} columns={[
            { key: 'label', label: t('measure') },
            { key: 'c', label: t('cand'), num: true, render: (r) => num(r.c) },
            ...(base ? [
              { key: 'b', label: baseName, num: true, render: (r) => num(r.b) },
              { key: 'd', label: t('diff'), num: true,
                render: (r) => (r.c == null || r.b == null ? '—' : number(Number(r.c) - Number(r.b))) },
            ] : []),
          ]} />
          {unknownBirthdays > 0 && <p class="muted">{t('withoutBirthdayNote', { n: number(unknownBirthdays) })}</p>}
          {unknownJoined > 0 && <p class="muted">{t('joinedUnknownNote', { n: number(unknownJoined) })}</p>}
        </section>
      )}
      {discount && (
        <section aria-labelledby="disc-h" class="card">
          <h3 id="disc-h">{t('discountAlt')}</h3>
          <p class="muted">{t('discountAltHint')}</p>
          <div class="grid figures even">
            {[[t('cand'), ct], [baseName, bt]].flatMap(([name, x]) => [
              <div class="card" key={name + 'c'}><div class="figure-label">{name} · {t('cost')}</div><div class="figure">{money(x.cost_minor)}</div></div>,
              <div class="card" key={name + 's'}><div class="figure-label">{name} · {t('costShare')}</div><div class="figure">{pct2(bp(x.cost_share_bp))}</div></div>,
            ])}
          </div>
        </section>
      )}
      {months.length > 0 && (
        <div class="chart-trio">
          <MonthChart fromZero title={t('chartPoints')} tableLabel={t('asTable', { title: t('chartPoints') })} monthLabel={t('month')}
            labels={labels} ticks={ticks}
            series={[
              { label: t('cand') + ': ' + t('issued'), values: column(months, 'issued'), format: points },
              { label: t('cand') + ': ' + t('burnt'), values: column(months, 'burnt'), format: points },
              ...(base ? [
                { label: baseName + ': ' + t('issued'), values: column(aligned, 'issued'), format: points },
                { label: baseName + ': ' + t('burnt'), values: column(aligned, 'burnt'), format: points },
              ] : []),
            ]}
            extra={[{ key: 'expired', label: t('cand') + ': ' + t('expired'), values: column(months, 'expired'), format: points }]} />
          <MonthChart fromZero title={t('chartCost')} tableLabel={t('asTable', { title: t('chartCost') })} monthLabel={t('month')}
            labels={labels} ticks={ticks} series={pair((m) => bp(m.cost_share_bp), pct2)}
            extra={[{ key: 'cost', label: t('cand') + ': ' + t('cost'), values: column(months, 'cost_minor'), format: money }]} />
          <MonthChart fromZero title={t('chartLiability')} tableLabel={t('asTable', { title: t('chartLiability') })} monthLabel={t('month')}
            labels={labels} ticks={ticks} series={pair((m) => m.liability, points)} />
        </div>
      )}
      <h3>{t('rules')}</h3>
      {returned && <p class="muted">{t('rulesNet')}</p>}
      <ScrollTable label={t('rules')} rows={rules.slice(0, 20)} columns={[
        { key: 'rule', label: t('rule'), render: (r) => <code>{r.rule}</code> },
        { key: 'kind', label: t('ruleKind'), render: (r) => <code>{r.kind}</code> },
        { key: 'points', label: t('points'), num: true, render: (r) => points(r.points) },
        { key: 'points_minor', label: t('pointsMoney'), num: true, render: (r) => money(r.points_minor) },
        { key: 'discount_minor', label: t('discount'), num: true, render: (r) => money(r.discount_minor) },
        ...(returned ? [
          { key: 'points_returned', label: t('pointsReturned'), num: true, render: (r) => points(r.points_returned || 0) },
          { key: 'discount_returned_minor', label: t('discountReturned'), num: true, render: (r) => money(r.discount_returned_minor || 0) },
        ] : []),
        { key: 'share', label: t('share'), num: true, render: (r) => (ruleTotal ? percent(costOf(r) / ruleTotal) : '—') },
      ]} />
    </>
  );
}

export function Simulate({ onExpired }) {
  useLang();
  const [cand, setCand] = useState('');
  const [base, setBase] = useState('');
  const [form, setForm] = useState({ redemption: '', from: '', to: '' });
  const [local, setLocal] = useState({});
  const [run, setRun] = useState(null); /* {id, state, progress, result, error, baseName} */
  const act = useAction(onExpired);
  const resultRef = useRef(null);
  const fe = (name) => fieldError(act.error, name);
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });

  /* Poll a running run until it is done or failed. */
  useEffect(() => {
    if (!run || run.state !== 'running') return undefined;
    const timer = setTimeout(async () => {
      const r = await act.run(() => api('GET', '/v1/admin/simulations/' + encodeURIComponent(run.id)));
      if (r) setRun((old) => ({ ...old, ...r }));
    }, POLL_MS);
    return () => clearTimeout(timer);
  }, [run]);
  useEffect(() => {
    if (run && run.state !== 'running' && resultRef.current) resultRef.current.focus();
  }, [run && run.state]);

  /* The running program (or undefined, the error kept). */
  async function runningProgram() {
    const list = await act.run(() => api('GET', '/v1/admin/programs'));
    if (!list || !list.running) return undefined;
    const r = await act.run(() => api('GET', '/v1/admin/programs/' + list.running));
    return r ? r.program : undefined;
  }
  async function fromRunning() {
    const p = await runningProgram();
    if (p) setCand(JSON.stringify(p, null, 2));
  }
  async function start(ev) {
    ev.preventDefault();
    const c = programOf(cand, false);
    const b = programOf(base, true);
    const errs = {};
    if (c.error) errs.program = c.error;
    if (b.error) errs.baseline = b.error;
    const body = { program: c.program };
    if (b.program) body.baseline = b.program;
    if (form.redemption.trim()) {
      const r = Number(form.redemption.trim().replace(',', '.'));
      if (!(r >= 0 && r <= 1)) errs.redemption = t('redemptionBad');
      else body.redemption = r;
    }
    if (form.from) body.from = form.from;
    if (form.to) body.to = form.to;
    setLocal(errs);
    if (Object.keys(errs).length) return;
    setRun(null);
    if (!body.baseline) {
      body.baseline = await runningProgram();
      if (!body.baseline) return;
    }
    const r = await act.run(() => api('POST', '/v1/admin/simulations', body));
    if (r) setRun({ id: r.id, state: 'running', progress: 0, baseName: b.program ? b.program.name || t('base') : t('current') });
  }
  const p = run ? share(run.progress) : 0;
  const programErr = local.program || fe('program');
  return (
    <>
      <h1>{t('title')}</h1>
      <p class="muted">{t('intro')}</p>
      <form class="card" onSubmit={start} noValidate aria-label={t('title')}>
        <ProgramInput label={t('candidate')} fileLabel={t('candidateFile')} textLabel={t('candidateText')} text={cand}
          setText={setCand} error={programErr}>
          <div class="actions">
            <Button kind="secondary" type="button" onClick={fromRunning}>{t('fromRunning')}</Button>
          </div>
        </ProgramInput>
        <ProgramInput label={t('baseline')} fileLabel={t('baselineFile')} textLabel={t('baselineText')} text={base}
          setText={setBase} hint={t('baselineHint')} error={local.baseline || fe('baseline')}>
          <div class="actions">
            <Button kind="secondary" type="button" onClick={() => setBase(JSON.stringify(discountProgram, null, 2))}>
              {t('useDiscount')}
            </Button>
            {base && <Button kind="link" type="button" onClick={() => setBase('')}>{t('clearBaseline')}</Button>}
          </div>
        </ProgramInput>
        <fieldset>
          <legend>{t('settings')}</legend>
          <div class="row row-top">
            <Field label={t('redemption')} name="redemption" inputMode="decimal" value={form.redemption}
              hint={t('redemptionHint')} error={local.redemption || fe('redemption')} onInput={set('redemption')} />
            <Field label={t('from')} name="from" type="date" value={form.from} hint={t('periodHint')} error={fe('from')}
              onInput={set('from')} />
            <Field label={t('to')} name="to" type="date" value={form.to} error={fe('to')} onInput={set('to')} />
          </div>
        </fieldset>
        <div class="actions">
          <Button type="submit" busy={act.busy || (run && run.state === 'running')}>{t('run')}</Button>
        </div>
      </form>
      <Alert kind="error">{act.error && (FIELDS.some((f) => fe(f)) ? t('fixFields') : act.error.message)}</Alert>
      {run && (
        <section aria-labelledby="results-h">
          <h2 id="results-h" ref={resultRef} tabIndex={-1}>{t('results')}</h2>
          {run.state === 'running' && (
            <div class="progress" role="status">
              <progress max="100" value={Math.round(p * 100)} aria-label={t('progress')} />
              <span>{t('running', { p: percent(p, 0) })}</span>
            </div>
          )}
          {run.state === 'failed' && <Alert kind="error">{t('failed', { message: typeof run.error === 'string' ? run.error : (run.error && run.error.message) || '' })}</Alert>}
          {run.state === 'done' && run.result && (
            <Results result={run.result} baseName={run.baseName} />
          )}
        </section>
      )}
    </>
  );
}
