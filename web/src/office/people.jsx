// people.jsx: what the back office's people sections share (customers,
// cards, families, adjustments, staff, tills, notifications): loading
// through the API with the session's end handled, running an action with
// its busy state and error, state badges, links to a customer or a card,
// the lots and history tables, a copy button, and one-time keys.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../lib/api.js';
import { dateTime, makeT, money, points } from '../lib/i18n.js';
import { Alert, Button, Table, useLoad } from '../lib/ui.jsx';
import { strings } from './people.strings.js';
import './people.css';

export const tp = makeT(strings);

/* A failure of anything but the API (a bug, the network) as an ApiError. */
function asApiError(e) {
  return e instanceof ApiError ? e : new ApiError(0, { message: String(e && e.message ? e.message : e) });
}

/* useLoad over the API: a 401 (the session ended) sends back to the login. */
export function useApiLoad(load, deps, onExpired) {
  const state = useLoad(load, deps);
  useEffect(() => {
    if (state.error && state.error.status === 401 && onExpired) onExpired();
  }, [state.error]);
  return state;
}

/*
 * An action the person starts (a button, a form): run(fn) sets busy, keeps
 * the error (an ApiError: .byField() for the form) or the success message,
 * and ends the session on a 401. A second run while one is busy is
 * ignored, so a double click does not send twice.
 */
export function useAction(onExpired) {
  const [state, set] = useState({ busy: false, error: null, done: null });
  const busy = useRef(false);
  async function run(fn) {
    if (busy.current) return undefined;
    busy.current = true;
    set({ busy: true, error: null, done: null });
    try {
      const done = await fn();
      set({ busy: false, error: null, done: done === undefined ? null : done });
      return done;
    } catch (e) {
      const error = asApiError(e);
      set({ busy: false, error, done: null });
      if (error.status === 401 && onExpired) onExpired();
      return undefined;
    } finally {
      busy.current = false;
    }
  }
  const fields = state.error ? state.error.byField() : {};
  return { ...state, fields, run, clear: () => set({ busy: false, error: null, done: null }) };
}

/* The error of an action or a load, announced; with a field the form does
 * not show, the field's name leads the message. */
export function ErrorAlert({ error, shown = [] }) {
  if (!error) return null;
  const text = error.status === 403 && !error.message ? tp('notAllowed') : error.message;
  const lead = error.field && !shown.includes(error.field) ? error.field + ': ' : '';
  return <Alert kind="error">{lead + text}</Alert>;
}

/* The state of a load: "Loading…" or its error; null once it has data. */
export function LoadState({ load }) {
  if (load.error) return <ErrorAlert error={load.error} />;
  if (!load.data) return <p class="muted">{tp('loading')}</p>;
  return null;
}

const BADGES = {
  card: { issued: '', active: 'ok', blocked: 'danger', replaced: 'warn' },
  msg: { pending: 'warn', sent: 'ok', dead: 'danger', cancelled: '' },
  term: { active: 'ok', revoked: 'danger' },
  staff: { active: 'ok', disabled: 'danger' },
};

/* A state as a coloured word: group card, msg, term or staff. */
export function StateBadge({ group, state }) {
  const tone = BADGES[group][state];
  return <span class={'badge' + (tone ? ' badge-' + tone : '')}>{tp(group + '.' + state)}</span>;
}

export function CustomerLink({ id, name }) {
  if (!id) return '—';
  return <a href={'#/customers/' + id}>{name || tp('customerN', { id })}</a>;
}

export function CardLink({ number }) {
  if (!number) return '—';
  return <a href={'#/cards/' + encodeURIComponent(number)}>{number}</a>;
}

/* A customer's name as text, or "Erased customer #id". */
export function customerName(c) {
  return c.full_name || (c.state === 'erased' ? tp('erasedName', { id: c.id }) : tp('customerN', { id: c.id }));
}

/* Label/value pairs: [[label, value], ...]; values render as text. */
export function Facts({ items }) {
  return (
    <dl class="facts">
      {items.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value === null || value === undefined || value === '' ? '—' : value}</dd>
        </div>
      ))}
    </dl>
  );
}

/* A secret shown once (a till's key, a webhook's secret) with a copy button. */
export function Secret({ label, value, note }) {
  const [copied, setCopied] = useState(null);
  async function copy() {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('ok');
    } catch {
      setCopied('failed');
    }
  }
  return (
    <div class="alert alert-ok secret" role="status">
      <p>{note}</p>
      <p>
        <span class="muted">{label}: </span>
        <code class="secret-value">{value}</code>{' '}
        <Button kind="secondary" onClick={copy}>{tp('copy')}</Button>
      </p>
      {copied === 'ok' && <p>{tp('copied')}</p>}
      {copied === 'failed' && <p>{tp('copyFailed')}</p>}
    </div>
  );
}

/* A key that makes an action idempotent (an adjustment): new for each
 * intended action, the same for its repeats. */
export function newKey(prefix) {
  const rnd =
    globalThis.crypto && crypto.randomUUID
      ? crypto.randomUUID().replace(/-/g, '').slice(0, 16)
      : Math.random().toString(16).slice(2, 18);
  return `${prefix}-${rnd}`;
}

/* The account's open lots (GET /v1/admin/cards/{number} "lots"). */
export function LotsTable({ lots }) {
  return (
    <ScrollTable
      wide
      caption={tp('lotsCaption')}
      rows={lots || []}
      columns={[
        { key: 'kind', label: tp('lotKind') },
        { key: 'amount', label: tp('lotAmount'), num: true, render: (l) => points(l.amount) },
        { key: 'remaining', label: tp('lotRemaining'), num: true, render: (l) => points(l.remaining) },
        { key: 'earned_at', label: tp('lotEarned'), render: (l) => dateTime(l.earned_at) },
        { key: 'active_from', label: tp('lotActive'), render: (l) => dateTime(l.active_from) },
        { key: 'expires_at', label: tp('lotExpires'), render: (l) => (l.expires_at ? dateTime(l.expires_at) : tp('never')) },
      ]}
    />
  );
}

/* One history line in words: "Purchase at store “main”, receipt R-1, for
 * 1 200 ₽: 120 earned, 50 spent". */
export function explain(h) {
  const name = strings.en['op.' + h.type] ? tp('op.' + h.type) : tp('op.other', { type: h.type });
  const where = [];
  if (h.store) where.push(tp('explainAt', { store: h.store }));
  if (h.receipt) where.push(tp('explainReceipt', { receipt: h.receipt }));
  if (h.amount) where.push(tp('explainAmount', { amount: money(h.amount) }));
  const what = [];
  if (h.earned) what.push(tp('explainEarned', { n: points(h.earned) }));
  if (h.spent) what.push(tp('explainSpent', { n: points(h.spent) }));
  if (!what.length && h.points !== undefined)
    what.push(tp('explainPoints', { sign: h.points > 0 ? '+' : '', n: points(h.points) }));
  return [name, ...where].join(', ') + (what.length ? ': ' + what.join(', ') : '');
}

/* A history (a customer's or a family pot's): when, card, who, the
 * explanation, the change of the balance; under a heading that names it,
 * so without a caption of its own. */
export function HistoryTable({ history, showCustomer = true }) {
  const columns = [
    { key: 'at', label: tp('at'), render: (h) => dateTime(h.at) },
    { key: 'card', label: tp('card'), render: (h) => <CardLink number={h.card} /> },
  ];
  if (showCustomer) columns.push({ key: 'customer', label: tp('customer'), render: (h) => <CustomerLink id={h.customer} /> });
  columns.push(
    { key: 'explain', label: tp('explanation'), render: explain },
    { key: 'points', label: tp('points'), num: true, render: (h) => (h.points > 0 ? '+' : '') + points(h.points) },
  );
  return <ScrollTable wide label={tp('historyCaption')} rows={history || []} columns={columns} />;
}

/* Which of `perms` the signed-in member holds: may('card.manage'). */
export function mayOf(me) {
  return (perm) => !!me && me.permissions.includes(perm);
}

/*
 * A table that, once wider than the screen (a phone), scrolls sideways in
 * a region the keyboard can reach (tab to it, then the arrow keys); at its
 * full width it is no tab stop. Lib's Table's props; `label` names the
 * region when there is no caption; `wide`: on a
 * phone it keeps a readable width and scrolls rather than squeeze its
 * columns.
 */
export function ScrollTable({ wide: _wide, label, ...props }) {
  const box = useRef(null);
  const [wide, setWide] = useState(false);
  /* Measured before the first paint, and again whenever the region or the
   * table in it changes size (rows arriving widen the table, not the
   * region), so a table that overflows is never shown without its tab stop. */
  useLayoutEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver === 'undefined') return undefined;
    const measure = () => setWide(el.scrollWidth > el.clientWidth + 1);
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    for (const table of el.querySelectorAll('table')) ro.observe(table);
    measure();
    return () => ro.disconnect();
  }, []);
  return (
    <div ref={box} class={'scroll' + (_wide ? ' scroll-wide' : '')} tabIndex={wide ? 0 : undefined}
      role={wide ? 'region' : undefined} aria-label={wide ? label || props.caption : undefined}>
      <Table {...props} />
    </div>
  );
}

let panels = 0;
/* A card with its heading (h2), named by it for screen readers. */
export function Panel({ title, class: extra, children }) {
  const id = useRef(null);
  if (id.current === null) id.current = 'panel-' + ++panels;
  return (
    <section class={'card' + (extra ? ' ' + extra : '')} aria-labelledby={id.current}>
      <h2 id={id.current}>{title}</h2>
      {children}
    </section>
  );
}

/* A view's h1 with a link back (a hash route) and its actions beside it. */
export function PageHead({ title, back, children }) {
  return (
    <div class="head">
      <h1>{title}</h1>
      <div class="actions">
        {back && <a href={back} class="btn btn-link">{tp('back')}</a>}
        {children}
      </div>
    </div>
  );
}

/* An account's balance and what of it may be spent now, large. */
export function BalanceFigures({ balance, available }) {
  return (
    <div class="figures">
      <div><div class="figure">{points(balance)}</div><div class="figure-label">{tp('balance')}</div></div>
      <div><div class="figure">{points(available)}</div><div class="figure-label">{tp('available')}</div></div>
    </div>
  );
}
