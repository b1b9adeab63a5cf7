// partner.jsx: a coalition partner's own view of the back office (role
// `partner`, docs/coalition.md "Partner staff and isolation"): the only
// sections such a session sees, each on a /v1/partner/ route (docs/api.md
// "Partners"): the partner as the program describes it, the operations at
// its stores (paged, a period, cards masked by the server), the rules that
// name it, its own statements (one laid out to print, a CSV of its
// figures), and for a bank partner the co-branded card's transactions.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { date, dateTime, makeT, money, points } from '../lib/i18n.js';
import { Alert, Button, Field } from '../lib/ui.jsx';
import { ErrorAlert, Facts, LoadState, Panel, ScrollTable, useAction, useApiLoad } from './people.jsx';
import { FIGURES, Printable } from './settlement.jsx';
import { strings } from './partner.strings.js';

const t = makeT(strings);
/* A percentage as the program file writes it ("2.5"), none when 0 or absent. */
const pct = (v) => (v && Number(v) ? v + ' %' : t('none_set'));
const word = (prefix, v) => {
  const w = t(prefix + v);
  return w === prefix + v ? v : w;
};

/* The currency of a store: the first pattern of the partner that matches. */
function storeCurrency(p, store, fallback) {
  for (const s of p.stores) {
    const m = s.match;
    if (m.endsWith('*') ? store.startsWith(m.slice(0, -1)) : store === m) return s.currency || fallback;
  }
  return fallback;
}

function About({ me }) {
  const p = me.partner;
  const fees = p.fees || {};
  return (
    <>
      <h1>{t('partner_title')}</h1>
      <Panel title={p.name}>
        <Facts items={[
          [t('code'), p.code],
          [t('name'), p.name],
          [t('program_version'), String(me.program_version)],
          [t('fee_op'), fees.per_operation ? money(fees.per_operation, me.currency) : t('none_set')],
          [t('fee_point'), pct(fees.per_point_percent)],
          [t('breakage'), pct(p.breakage_to_operator)],
          ...(p.bank ? [[t('bank'), t('bank_of', { percent: p.bank.cashback_percent, kind: p.bank.point_kind || '—' })]] : []),
        ]} />
      </Panel>
      <Panel title={t('stores')}>
        {p.stores.length === 0 ? <p>{t('no_stores')}</p> : (
          <ScrollTable label={t('stores')} rows={p.stores} rowKey={(s) => s.match} columns={[
            { key: 'match', label: t('store_pattern') },
            { key: 'currency', label: t('currency'), render: (s) => s.currency || me.currency },
          ]} />
        )}
      </Panel>
    </>
  );
}

function Operations({ me, onExpired }) {
  const [form, setForm] = useState({ from: '', to: '' });
  const [query, setQuery] = useState({ from: '', to: '', before: null });
  const q = new URLSearchParams();
  if (query.from) q.set('from', query.from);
  if (query.to) q.set('to', query.to);
  if (query.before !== null) q.set('before', String(query.before));
  q.set('limit', '50');
  const load = useApiLoad(() => api('GET', '/v1/partner/operations?' + q), [q.toString()], onExpired);
  const d = load.data;
  return (
    <>
      <h1>{t('ops_title')}</h1>
      <form class="card actions" onSubmit={(e) => { e.preventDefault(); setQuery({ ...form, before: null }); }}>
        <Field label={t('from')} type="date" name="from" value={form.from}
          onInput={(e) => setForm({ ...form, from: e.currentTarget.value })} />
        <Field label={t('to')} type="date" name="to" value={form.to}
          onInput={(e) => setForm({ ...form, to: e.currentTarget.value })} />
        <Button type="submit">{t('show')}</Button>
      </form>
      {!d ? <LoadState load={load} /> : (
        <Panel title={t('period_shown', { from: date(d.from), to: date(d.to) })}>
          {d.operations.length === 0 ? <p>{t('ops_none')}</p> : (
            <ScrollTable wide label={t('ops_table')} rows={d.operations} rowKey={(o) => o.id} columns={[
              { key: 'at', label: t('at'), render: (o) => dateTime(o.at) },
              { key: 'type', label: t('type'), render: (o) => word('t_', o.type) },
              { key: 'store', label: t('store') },
              { key: 'receipt', label: t('receipt'), render: (o) => o.receipt || '—' },
              { key: 'card', label: t('card'), render: (o) => o.card || '—' },
              { key: 'amount', label: t('amount'), num: true, render: (o) => money(o.amount, storeCurrency(me.partner, o.store, me.currency)) },
              { key: 'earned', label: t('earned'), num: true, render: (o) => points(o.earned) },
              { key: 'burned', label: t('burned'), num: true, render: (o) => points(o.burned) },
            ]} />
          )}
          <p class="actions">
            {query.before !== null && <Button kind="secondary" onClick={() => setQuery({ ...query, before: null })}>{t('first')}</Button>}
            {d.next_before !== null && d.next_before !== undefined && (
              <Button kind="secondary" onClick={() => setQuery({ ...query, before: d.next_before })}>{t('more')}</Button>
            )}
          </p>
        </Panel>
      )}
    </>
  );
}

function Rules({ me, onExpired }) {
  const load = useApiLoad(() => api('GET', '/v1/partner/rules'), [], onExpired);
  const own = me.partner.code;
  const party = (code) => (code === own ? t('you') : code);
  if (!load.data) return <><h1>{t('rules_title')}</h1><LoadState load={load} /></>;
  const rules = load.data.rules;
  return (
    <>
      <h1>{t('rules_title')}</h1>
      <p class="muted">{t('rules_about', { v: load.data.program_version })}</p>
      <Panel title={t('rules_table')}>
        {rules.length === 0 ? <p>{t('rules_none')}</p> : (
          <ScrollTable label={t('rules_table')} rows={rules} rowKey={(r) => r.id} columns={[
            { key: 'id', label: t('rule_id') },
            { key: 'kind', label: t('kind'), render: (r) => word('k_', r.kind) },
            { key: 'percent', label: t('percent'), num: true, render: (r) => (r.percent !== undefined ? r.percent + ' %' : '—') },
            { key: 'category', label: t('category'), render: (r) => r.category || t('any_category') },
            { key: 'who', label: t('who_pays'), render: (r) => party(r.partner || own) },
            {
              key: 'where', label: t('where'),
              render: (r) => (r.at_partner && r.at_partner !== own ? t('at_other', { p: r.at_partner }) : t('at_own')),
            },
          ]} />
        )}
      </Panel>
    </>
  );
}

/* A statement's figures as CSV (figure,value), a data: link to download. */
function csvHref(s) {
  const lines = ['figure,value', `number,${s.number}`, `period,${s.period}`, `party,${s.party}`, `currency,${s.currency}`,
    ...FIGURES.map((f) => `${f},${s[f]}`)];
  return 'data:text/csv;charset=utf-8,' + encodeURIComponent(lines.join('\n') + '\n');
}

function Statements({ onExpired }) {
  const [before, setBefore] = useState(null);
  const [shown, setShown] = useState(null);
  const load = useApiLoad(() => api('GET', '/v1/partner/statements' + (before ? '?before=' + before : '')), [before], onExpired);
  const d = load.data;
  return (
    <>
      <h1 class="no-print">{t('st_title')}</h1>
      <div class={shown ? 'no-print' : ''}>
        {!d ? <LoadState load={load} /> : (
          <Panel title={t('st_table')}>
            {d.statements.length === 0 ? <p>{t('st_none')}</p> : (
              <ScrollTable wide label={t('st_table')} rows={d.statements} rowKey={(s) => s.number} columns={[
                { key: 'number', label: t('number'), num: true },
                { key: 'period', label: t('period') },
                { key: 'currency', label: t('currency') },
                { key: 'closed_at', label: t('closed_at'), render: (s) => dateTime(s.closed_at) },
                { key: 'net', label: t('net'), num: true, render: (s) => <strong>{money(s.net_position_minor, s.currency)}</strong> },
                {
                  key: 'do', label: t('actions'), render: (s) => (
                    <div class="actions">
                      <Button kind="secondary" aria-label={t('open_of', { n: s.number })} onClick={() => setShown(s)}>{t('open')}</Button>
                      <a class="btn btn-secondary" href={csvHref(s)} download={`statement-${s.number}.csv`}
                        aria-label={t('csv') + ' ' + s.number}>{t('csv')}</a>
                    </div>
                  ),
                },
              ]} />
            )}
            {d.next_before && <p class="actions"><Button kind="secondary" onClick={() => setBefore(d.next_before)}>{t('older')}</Button></p>}
          </Panel>
        )}
      </div>
      {shown && <Printable s={shown} onHide={() => setShown(null)} />}
    </>
  );
}

/* The CSV the import takes (id,at,card,amount,currency,merchant) as the
 * API's transactions; double-quoted fields may hold commas. */
function parseCsv(text) {
  const rows = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const f = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') quoted = false; else cur += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') { f.push(cur); cur = ''; } else cur += c;
    }
    f.push(cur);
    rows.push(f.map((x) => x.trim()));
  }
  if (rows.length === 0) return { error: t('parse_err', { line: 1, problem: t('p_empty') }) };
  if (rows[0].join(',') !== 'id,at,card,amount,currency,merchant') return { error: t('parse_err', { line: 1, problem: t('p_header') }) };
  const transactions = [];
  for (let i = 1; i < rows.length; i++) {
    const r = rows[i];
    if (r.length !== 6) return { error: t('parse_err', { line: i + 1, problem: t('p_cols') }) };
    if (!/^\d+$/.test(r[3])) return { error: t('parse_err', { line: i + 1, problem: t('p_amount') }) };
    transactions.push({ id: r[0], at: r[1], card: r[2], amount: Number(r[3]), currency: r[4], merchant: r[5] });
  }
  if (transactions.length === 0) return { error: t('parse_err', { line: 2, problem: t('p_empty') }) };
  return { transactions };
}

function CardTransactions({ onExpired }) {
  const [text, setText] = useState('id,at,card,amount,currency,merchant\n');
  const [parseError, setParseError] = useState(null);
  const act = useAction(onExpired);
  async function send(ev) {
    ev.preventDefault();
    const p = parseCsv(text);
    setParseError(p.error || null);
    if (p.error) return;
    await act.run(() => api('POST', '/v1/partner/card-transactions', { transactions: p.transactions }));
  }
  async function pick(ev) {
    const file = ev.currentTarget.files && ev.currentTarget.files[0];
    if (file) setText(await file.text());
  }
  /* The answer's "points" counts replayed lines too: the alert says what this send credited. */
  const d = act.done;
  return (
    <>
      <h1>{t('card_title')}</h1>
      <p class="muted">{t('card_about')}</p>
      <form class="card" onSubmit={send}>
        <Field label={t('csv_file')} type="file" name="file" accept=".csv,text/csv" onChange={pick} />
        <Field label={t('csv_text')} kind="textarea" name="csv" rows={8} value={text}
          onInput={(e) => setText(e.currentTarget.value)} />
        {parseError && <Alert kind="error">{parseError}</Alert>}
        <ErrorAlert error={act.error} />
        <Button type="submit" busy={act.busy}>{t('send')}</Button>
      </form>
      {d && (
        <Panel title={t('result')}>
          <Alert kind="ok">{t('credited', { points: points(d.credited.reduce((n, c) => n + (c.replayed ? 0 : c.points), 0)) })}</Alert>
          <ScrollTable wide label={t('result')} rows={d.credited} rowKey={(c) => c.id} columns={[
            { key: 'id', label: t('id') },
            { key: 'card', label: t('card') },
            { key: 'merchant', label: t('merchant') },
            { key: 'amount', label: t('amount'), num: true, render: (c) => money(c.amount, c.currency) },
            { key: 'points', label: t('points'), num: true, render: (c) => points(c.points) },
            { key: 'replayed', label: t('replayed'), render: (c) => (c.replayed ? t('yes') : t('no')) },
          ]} />
        </Panel>
      )}
    </>
  );
}

/* The partner's sections: route, words key, page; a bank's own last. */
const SECTIONS = [
  ['/', 's_partner', About],
  ['/operations', 's_operations', Operations],
  ['/rules', 's_rules', Rules],
  ['/statements', 's_statements', Statements],
  ['/card-transactions', 's_card', CardTransactions],
];

/* The office of a partner session: its own menu and pages (app.jsx shows
 * it instead of the operator's sections when GET /v1/admin/me names a
 * partner). `navLabel`: the menu's name, the shell's word. */
export function PartnerOffice({ route, onExpired, navLabel }) {
  const me = useApiLoad(() => api('GET', '/v1/partner/me'), [], onExpired);
  if (!me.data) return <div class="wrap"><LoadState load={me} /></div>;
  const sections = SECTIONS.filter((s) => s[0] !== '/card-transactions' || me.data.partner.bank);
  const top = '/' + route.path.split('/')[1];
  const current = sections.find((s) => s[0] === top) || sections[0];
  const Page = current[2];
  return (
    <div class="wrap">
      <nav class="tabs" aria-label={navLabel}>
        {sections.map(([path, key]) => (
          <a href={'#' + path} aria-current={path === current[0] ? 'page' : undefined} key={path}>{t(key)}</a>
        ))}
      </nav>
      <main>
        <Page me={me.data} onExpired={onExpired} />
      </main>
    </div>
  );
}
