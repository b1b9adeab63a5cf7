// sale.jsx: a sale at the till. The cashier identifies the customer (a
// card or a phone, scanned or typed: POST /v1/identify), enters the basket
// line by line (SKU, category, quantity, price: a scanner types the SKU and
// Enter), sees the quote (POST /v1/quote: discount, the most points can pay
// and why, what is earned), chooses how many points to burn (0 unless
// chosen; F7 takes the most), and commits (POST /v1/purchases) with the
// basket's receipt number, resent until answered (sender.js). The answer
// is the receipt (receipt.jsx).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, money, points } from '../lib/i18n.js';
import { Alert, Button, Field, Table } from '../lib/ui.jsx';
import { identifyTries, moneyText, parseMoney, parseWhole } from './amounts.js';
import { KeyButton, useFocus, useKeys } from './keys.jsx';
import { Receipt } from './receipt.jsx';
import { onAnswer, resume, send, useSender } from './sender.js';
import { emptySale, getTill, load, nextReceipt, rememberCategory, update, useTill } from './state.js';
import { strings } from './strings.js';

const t = makeT(strings);

/* Points asked for to learn the most the basket lets them pay: the
 * engine clamps a burn to the rules and the balance and says why. */
const BURN_ASK_ALL = 1000000000;
const QTY_MAX = 100000;
const AMOUNT_MAX = 10000000000000;

/* The error of an answer as the sale keeps it (saved: plain data). */
function kept(e) {
  return { status: e.status, code: e.code, message: e.message, field: e.field };
}

function keyRefused(e) {
  if (e && e.status === 401) update(() => ({ keyRefused: true }));
}

/* An answer to a purchase, whichever view is shown when it comes. */
onAnswer('purchase', (p, answer, error) => {
  const { sale, pairing } = getTill();
  if (error) keyRefused(error);
  const patch = {};
  if (answer && pairing && !pairing.store) patch.pairing = { ...pairing, store: answer.store };
  if (sale.receipt === p.receipt)
    patch.sale = answer
      ? { ...sale, done: { answer, cashier: p.cashier }, error: null }
      : { ...sale, error: kept(error) };
  update(() => patch);
});

const apiLine = (l) => ({ sku: l.sku, category: l.category, qty: l.qty, amount: l.amount });

function Customer({ customer, inputRef, onFound, disabled }) {
  const till = useTill();
  const [text, setText] = useState(till.typed || '');
  const [err, setErr] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(ev) {
    ev.preventDefault();
    const s = text.trim();
    if (!s) return;
    setBusy(true);
    setErr(null);
    let last = null;
    for (const body of identifyTries(s)) {
      try {
        const c = await api('POST', '/v1/identify', body, { bearer: till.pairing.key });
        setText('');
        setBusy(false);
        onFound(c);
        return;
      } catch (e) {
        last = e;
        /* A number that is no card may be a phone: try that next. */
        if (e.status !== 404 && !(e.status === 403 && body.phone)) break;
      }
    }
    keyRefused(last);
    setErr(last.status === 404 ? t('notFound', { what: s }) : last.message);
    setBusy(false);
    inputRef.current?.select();
  }
  return (
    <section class="card customer" aria-labelledby="customer-h">
      <h2 id="customer-h">{t('customer')}</h2>
      <form class="row" onSubmit={submit}>
        <Field label={t('cardOrPhone')} name="identify" autocomplete="off" inputMode="tel" inputRef={inputRef}
          aria-keyshortcuts="F2" error={err} value={text} disabled={disabled}
          onInput={(e) => setText(e.currentTarget.value)} />
        <Button type="submit" kind="secondary" busy={busy} disabled={disabled}>
          {t('find')}
        </Button>
      </form>
      {customer && <CustomerFigures c={customer} />}
    </section>
  );
}

function CustomerFigures({ c }) {
  const tier = c.tier;
  return (
    <div class="who" aria-live="polite">
      <p class="who-card">
        <strong>{t('cardNo', { card: c.card })}</strong>{' '}
        {c.identified_by === 'phone' && <span class="badge">{t('byPhone')}</span>}{' '}
        {c.registered ? (
          <span class="badge badge-ok">{t('registered')}</span>
        ) : (
          <span class="badge badge-warn">{t('unregistered')}</span>
        )}{' '}
        {tier && <span class="badge badge-tier">{t('tier', { name: tier.name })}</span>}
      </p>
      <dl class="figures">
        <div>
          <dt>{t('balance')}</dt>
          <dd>{points(c.balance)}</dd>
        </div>
        <div>
          <dt>{t('available')}</dt>
          <dd>{points(c.available)}</dd>
        </div>
        {/* The card's points in other currencies (docs/coalition.md
            "Currencies"): a receipt in one of them earns and burns there. */}
        {(c.balances || []).slice(1).map((b) => (
          <div key={b.currency}>
            <dt>{t('balanceIn', { currency: b.currency })}</dt>
            <dd>{points(b.available)}</dd>
          </div>
        ))}
        {c.pending > 0 && (
          <div>
            <dt>{t('pending')}</dt>
            <dd>{points(c.pending)}</dd>
          </div>
        )}
        {c.personal_discount && (
          <div>
            <dt>{t('personalDiscount')}</dt>
            <dd>{c.personal_discount}</dd>
          </div>
        )}
      </dl>
      {tier && (tier.privileges || []).length > 0 && (
        <p class="privileges">
          {t('privileges')}: {tier.privileges.join(' · ')}
        </p>
      )}
      {!c.registered && <p class="muted small">{t('unregisteredHint')}</p>}
    </div>
  );
}

const emptyEntry = () => ({ sku: '', category: load('categories', [])[0] || '', qty: '1', price: '' });

function Entry({ skuRef, burnRef, editing, onSave, onCancel, disabled, hasLines }) {
  const [f, setF] = useState(emptyEntry);
  const [errs, setErrs] = useState({});
  const refs = { sku: skuRef, category: useRef(null), qty: useRef(null), price: useRef(null) };
  const order = ['sku', 'category', 'qty', 'price'];
  useEffect(() => {
    if (editing) {
      const l = editing.line;
      setF({ sku: l.sku, category: l.category, qty: String(l.qty), price: moneyText(l.amount / l.qty) });
      setErrs({});
      skuRef.current?.focus();
    }
  }, [editing]);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  function onKeyDown(ev) {
    if (ev.key !== 'Enter') return;
    const name = ev.currentTarget.name;
    if (name === 'price') return;
    ev.preventDefault();
    /* An empty SKU and Enter: the basket is done, on to the points. */
    if (name === 'sku' && !f.sku.trim()) {
      if (hasLines) burnRef.current?.focus();
      return;
    }
    refs[order[order.indexOf(name) + 1]].current?.focus();
  }
  function submit(ev) {
    ev.preventDefault();
    const e = {};
    const sku = f.sku.trim();
    const category = f.category.trim();
    const qty = parseWhole(f.qty, 1, QTY_MAX);
    const price = parseMoney(f.price);
    if (!sku) e.sku = t('skuRequired');
    if (qty === null) e.qty = t('qtyBad', { max: QTY_MAX });
    if (price === null) e.price = t('priceBad');
    else if (qty !== null && price * qty > AMOUNT_MAX) e.price = t('amountBig');
    setErrs(e);
    const first = order.find((k) => e[k]);
    if (first) {
      refs[first].current?.focus();
      return;
    }
    rememberCategory(category);
    onSave({ sku, category, qty, amount: price * qty });
    setF({ ...emptyEntry(), category });
    skuRef.current?.focus();
  }
  function cancel() {
    setF({ ...emptyEntry(), category: f.category });
    setErrs({});
    onCancel();
    skuRef.current?.focus();
  }
  const cats = load('categories', []);
  return (
    <form class="entry" onSubmit={submit} aria-label={editing ? t('editLine') : t('addLine')}>
      <Field label={t('sku')} name="sku" autocomplete="off" inputRef={skuRef} aria-keyshortcuts="F3"
        value={f.sku} error={errs.sku} onInput={set('sku')} onKeyDown={onKeyDown} disabled={disabled} />
      <Field label={t('category')} name="category" autocomplete="off" list="till-categories" inputRef={refs.category}
        value={f.category} onInput={set('category')} onKeyDown={onKeyDown} disabled={disabled} />
      <datalist id="till-categories">
        {cats.map((c) => (
          <option value={c} key={c} />
        ))}
      </datalist>
      <Field label={t('qty')} name="qty" inputMode="numeric" autocomplete="off" inputRef={refs.qty} class="short"
        value={f.qty} error={errs.qty} onInput={set('qty')} onKeyDown={onKeyDown} disabled={disabled} />
      <Field label={t('price')} name="price" inputMode="decimal" autocomplete="off" inputRef={refs.price}
        value={f.price} error={errs.price} onInput={set('price')} onKeyDown={onKeyDown} disabled={disabled} />
      <div class="entry-actions">
        <Button type="submit" disabled={disabled}>{editing ? t('saveLine') : t('addLine')}</Button>
        {editing && (
          <KeyButton k="Escape" kind="secondary" type="button" onClick={cancel}>
            {t('cancel')}
          </KeyButton>
        )}
      </div>
    </form>
  );
}

function Lines({ lines, quoted, onEdit, onRemove, disabled }) {
  const q = quoted && quoted.lines.length === lines.length ? quoted.lines : null;
  const any = (k) => q && q.some((l) => l[k] > 0);
  const columns = [
    { key: 'n', label: '#', render: (r) => r.i + 1 },
    {
      key: 'sku',
      label: t('skuCol'),
      render: (r) => (
        <>
          <span class="sku">{r.sku}</span>
          {r.category && <span class="muted small cat">{r.category}</span>}
        </>
      ),
    },
    { key: 'qty', label: t('qty'), num: true },
    { key: 'amount', label: t('amount'), num: true, render: (r) => money(r.amount) },
    ...(any('discount') ? [{ key: 'discount', label: t('discount'), num: true, render: (r) => money(q[r.i].discount) }] : []),
    ...(any('paid_with_points')
      ? [{ key: 'points', label: t('byPoints'), num: true, render: (r) => money(q[r.i].paid_with_points) }]
      : []),
    ...(any('discount') || any('paid_with_points')
      ? [{ key: 'paid', label: t('toPay'), num: true, render: (r) => money(q[r.i].paid) }]
      : []),
    {
      key: 'act',
      label: t('actions'),
      render: (r) => (
        <span class="line-actions">
          <Button kind="link" type="button" disabled={disabled} aria-label={t('editNamed', { sku: r.sku })}
            onClick={() => onEdit(r.i)}>
            {t('edit')}
          </Button>
          <Button kind="link" type="button" disabled={disabled} aria-label={t('removeNamed', { sku: r.sku })}
            onClick={() => onRemove(r.i)}>
            {t('remove')}
          </Button>
        </span>
      ),
    },
  ];
  return (
    <Table caption={t('basketLines', { n: lines.length })} columns={columns}
      rows={lines.map((l, i) => ({ ...l, i }))} rowKey={(r) => r.i + ':' + r.sku} empty={t('basketEmpty')} />
  );
}

function Figure({ label, children, big }) {
  return (
    <div class={big ? 'fig fig-big' : 'fig'}>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function Total({ quote, quoteErr, quoting, sale, burnRef, onBurn, onMax, onPay, onClear, sending, clearAsk }) {
  const [burnText, setBurnText] = useState(String(sale.burn || 0));
  const [burnErr, setBurnErr] = useState(null);
  useEffect(() => setBurnText(String(sale.burn || 0)), [sale.burn]);
  function applyBurn(ev) {
    ev?.preventDefault();
    const n = parseWhole(burnText, 0, BURN_ASK_ALL);
    if (n === null) {
      setBurnErr(t('burnBad'));
      return;
    }
    setBurnErr(null);
    onBurn(n);
  }
  const q = quote && quote.q;
  return (
    <section class="card total" aria-labelledby="total-h">
      <h2 id="total-h">{t('total')}</h2>
      {quoteErr && <Alert kind="error">{quoteErr.field ? `${quoteErr.field}: ${quoteErr.message}` : quoteErr.message}</Alert>}
      {!q ? (
        <p class="muted">{quoting ? t('quoting') : sale.card ? t('addLines') : t('identifyFirst')}</p>
      ) : (
        <div aria-live="polite" aria-busy={quoting ? 'true' : 'false'}>
          <dl class="figures totals">
            <Figure label={t('amount')}>{money(q.amount)}</Figure>
            {q.discount > 0 && <Figure label={t('discount')}>−{money(q.discount)}</Figure>}
            <Figure label={t('maxBurn')}>
              {t('pointsMoney', { points: points(quote.max), money: money(quote.maxMoney) })}
            </Figure>
          </dl>
          {quote.maxWhy && <p class="why small">{t('limitedBy', { why: quote.maxWhy })}</p>}
        </div>
      )}
      <form class="burn row" onSubmit={applyBurn}>
        <Field label={t('burn')} name="burn" inputMode="numeric" autocomplete="off" inputRef={burnRef}
          hint={quote ? t('burnHint', { max: points(quote.max) }) : undefined} error={burnErr}
          value={burnText} onInput={(e) => setBurnText(e.currentTarget.value)} onBlur={() => applyBurn()}
          disabled={sending || !sale.card} />
        <KeyButton k="F7" kind="secondary" type="button" onClick={onMax} disabled={sending || !quote}>
          {t('max')}
        </KeyButton>
      </form>
      {q && (
        <dl class="figures totals">
          {q.burned > 0 && (
            <Figure label={t('byPoints')}>
              −{money(q.paid_with_points)} ({t('pointsN', { n: points(q.burned) })})
            </Figure>
          )}
          <Figure label={t('toPay')} big>{money(q.paid)}</Figure>
          <Figure label={t('earned')}>{points(q.earned)}</Figure>
          <Figure label={t('balanceAfter')}>{points(q.balance)}</Figure>
          {q.joined === false && <p class="why small">{t('notJoined')}</p>}
        </dl>
      )}
      {q && q.explain && q.explain.length > 0 && (
        <details class="explain">
          <summary>{t('why')}</summary>
          <ul>
            {q.explain.map((x, i) => (
              <li key={i}>{x.text}</li>
            ))}
          </ul>
        </details>
      )}
      <div class="pay-actions">
        <KeyButton k="F9" class="btn btn-primary btn-pay" onClick={onPay} busy={sending}
          disabled={!sale.card || sale.lines.length === 0}>
          {t('pay')}
        </KeyButton>
        <KeyButton k="F8" kind="secondary" onClick={onClear} disabled={sending}>
          {clearAsk ? t('clearSure') : t('clear')}
        </KeyButton>
      </div>
    </section>
  );
}

function Sending({ sender }) {
  const e = sender.lastError;
  return (
    <div class="alert alert-info sending" role="status">
      <strong>{t('sending', { receipt: sender.pending.receipt })}</strong>{' '}
      {e && (
        <>
          {t('retrying', { n: sender.attempt, s: Math.round(sender.waitMs / 1000) || 1, why: e.status ? `HTTP ${e.status}` : t('network') })}{' '}
          <Button kind="link" type="button" onClick={resume}>
            {t('resendNow')}
          </Button>
        </>
      )}
    </div>
  );
}

export function Sale({ me }) {
  const till = useTill();
  const sale = till.sale;
  const sender = useSender();
  const sending = !!sender.pending && sender.pending.kind === 'purchase';
  const identifyRef = useRef(null);
  const skuRef = useRef(null);
  const burnRef = useRef(null);
  const [quote, setQuote] = useState(null);
  const [quoteErr, setQuoteErr] = useState(null);
  const [quoting, setQuoting] = useState(false);
  const [editing, setEditing] = useState(null);
  const [clearAsk, setClearAsk] = useState(false);
  const [again, setAgain] = useState(0);
  const tick = useRef(0);
  const bearer = till.pairing.key;

  /* The customer of a basket kept from before a reload. */
  useEffect(() => {
    if (sale.card && !till.customer && !sale.done)
      api('POST', '/v1/identify', { card: sale.card }, { bearer }).then(
        (c) => update(() => ({ customer: c })),
        keyRefused,
      );
  }, []);
  useFocus(sale.card ? skuRef : identifyRef, !sale.done, [sale.done]);

  /* The quote follows the basket, the customer and the burn. */
  const basketKey = JSON.stringify([sale.card, sale.lines, sale.burn, again]);
  useEffect(() => {
    if (!sale.card || sale.lines.length === 0 || sale.done) {
      setQuote(null);
      setQuoteErr(null);
      return;
    }
    const n = ++tick.current;
    setQuoting(true);
    const timer = setTimeout(async () => {
      const base = { card: sale.card, lines: sale.lines.map(apiLine) };
      const available = till.customer ? till.customer.available : BURN_ASK_ALL;
      try {
        const [atMost, chosen] = await Promise.all([
          available > 0 ? api('POST', '/v1/quote', { ...base, burn: BURN_ASK_ALL }, { bearer }) : null,
          api('POST', '/v1/quote', { ...base, burn: sale.burn }, { bearer }),
        ]);
        if (n !== tick.current) return;
        setQuote({
          q: chosen,
          max: atMost ? atMost.burned : 0,
          maxMoney: atMost ? atMost.paid_with_points : 0,
          maxWhy: atMost ? atMost.burn_limited_by : t('noPoints'),
        });
        setQuoteErr(null);
      } catch (e) {
        if (n !== tick.current) return;
        keyRefused(e);
        setQuote(null);
        setQuoteErr(e);
      } finally {
        if (n === tick.current) setQuoting(false);
      }
    }, 150);
    return () => clearTimeout(timer);
  }, [basketKey, sale.done]);

  const setSale = (patch) => update((s) => ({ sale: { ...s.sale, ...patch } }));
  function found(c) {
    update((s) => ({ customer: c, typed: '', sale: { ...s.sale, card: c.card, error: null } }));
    skuRef.current?.focus();
  }
  function saveLine(line) {
    const lines = [...sale.lines];
    if (editing) lines.splice(editing.index, 0, line);
    else lines.push(line);
    setEditing(null);
    setClearAsk(false);
    setSale({ lines, error: null });
  }
  function editLine(i) {
    const lines = [...sale.lines];
    const [line] = lines.splice(i, 1);
    setEditing({ index: i, line });
    setSale({ lines });
  }
  function cancelEdit() {
    if (!editing) return;
    const lines = [...sale.lines];
    lines.splice(editing.index, 0, editing.line);
    setEditing(null);
    setSale({ lines });
  }
  function removeLine(i) {
    setSale({ lines: sale.lines.filter((_, k) => k !== i) });
    skuRef.current?.focus();
  }
  function max() {
    if (!quote) return;
    setSale({ burn: quote.max });
    burnRef.current?.focus();
  }
  function pay() {
    if (sending || sale.done) return;
    if (!sale.card) {
      identifyRef.current?.focus();
      return;
    }
    if (sale.lines.length === 0 || editing) {
      skuRef.current?.focus();
      return;
    }
    const receipt = sale.receipt || nextReceipt();
    const burn = quote ? Math.min(sale.burn, quote.max) : sale.burn;
    const body = { card: sale.card, receipt, burn, lines: sale.lines.map(apiLine) };
    setSale({ receipt, burn, error: null });
    send({ kind: 'purchase', path: '/v1/purchases', receipt, body, cashier: me.login });
  }
  function newReceipt() {
    setSale({ receipt: nextReceipt(), error: null });
  }
  function clear() {
    if (sending) return;
    if (sale.lines.length > 0 && !sale.done && !clearAsk) {
      setClearAsk(true);
      return;
    }
    setClearAsk(false);
    setEditing(null);
    update(() => ({ sale: emptySale(), customer: null, typed: '' }));
    identifyRef.current?.focus();
  }
  useKeys({
    F2: () => {
      identifyRef.current?.focus();
      identifyRef.current?.select();
    },
    F3: () => skuRef.current?.focus(),
    F4: () => {
      setAgain(again + 1);
      burnRef.current?.focus();
    },
    F7: max,
    F8: clear,
    F9: pay,
    Escape: () => (editing ? cancelEdit() : clearAsk ? setClearAsk(false) : false),
  });

  if (sale.done)
    return (
      <Done sale={sale} pairing={till.pairing}
        onNew={(typed) => update(() => ({ sale: emptySale(), customer: null, typed }))} />
    );
  const err = sale.error;
  return (
    <main class="till-wrap sale">
      <h1 class="sr-only">{t('sale')}</h1>
      {sending && <Sending sender={sender} />}
      {err && (
        <Alert kind="error">
          {err.code === 'receipt_conflict' ? t('conflict', { receipt: sale.receipt }) : err.field ? `${err.field}: ${err.message}` : err.message}{' '}
          {err.code === 'receipt_conflict' && (
            <Button kind="link" type="button" onClick={newReceipt}>
              {t('newNumber')}
            </Button>
          )}
        </Alert>
      )}
      {clearAsk && <Alert kind="info">{t('clearAsk')}</Alert>}
      <div class="sale-grid">
        <div class="sale-left">
          <Customer customer={till.customer} inputRef={identifyRef} onFound={found} disabled={sending} />
          <section class="card basket" aria-labelledby="basket-h">
            <h2 id="basket-h">
              {t('basket')} {sale.receipt && <span class="muted small">{t('receiptNo', { receipt: sale.receipt })}</span>}
            </h2>
            <Entry skuRef={skuRef} burnRef={burnRef} editing={editing} onSave={saveLine} onCancel={cancelEdit}
              disabled={sending} hasLines={sale.lines.length > 0} />
            <Lines lines={sale.lines} quoted={quote && quote.q} onEdit={editLine} onRemove={removeLine} disabled={sending || !!editing} />
          </section>
        </div>
        <Total quote={quote} quoteErr={quoteErr} quoting={quoting} sale={sale} burnRef={burnRef}
          onBurn={(n) => setSale({ burn: n })} onMax={max} onPay={pay} onClear={clear} sending={sending} clearAsk={clearAsk} />
      </div>
    </main>
  );
}

/* The answered sale: its receipt, print, and the next sale. A digit typed
 * anywhere but a field (a scanner reading the next card) starts it. */
function Done({ sale, pairing, onNew }) {
  const next = useRef(null);
  useFocus(next);
  useKeys({ F8: () => onNew(''), 'Alt+P': () => print() });
  useEffect(() => {
    const on = (e) => {
      const tag = document.activeElement && document.activeElement.tagName;
      if (/^\d$/.test(e.key) && !e.altKey && !e.ctrlKey && tag !== 'INPUT' && tag !== 'TEXTAREA') {
        e.preventDefault();
        onNew(e.key);
      }
    };
    addEventListener('keydown', on);
    return () => removeEventListener('keydown', on);
  }, []);
  const a = sale.done.answer;
  return (
    <main class="till-wrap done">
      <h1 class="no-print">{a.replayed ? t('doneReplayed') : t('done')}</h1>
      <Alert kind="ok">{t('doneFigures', { paid: money(a.paid), earned: points(a.earned), balance: points(a.balance) })}</Alert>
      <div class="done-grid">
        <Receipt kind="purchase" answer={a} cashier={sale.done.cashier} pairing={pairing} />
        <div class="done-actions no-print">
          <KeyButton k="Alt+P" kind="secondary" onClick={() => print()}>
            {t('print')}
          </KeyButton>
          <button type="button" class="btn btn-primary" ref={next} aria-keyshortcuts="F8" onClick={() => onNew('')}>
            {t('newSale')} <kbd class="key">F8</kbd>
          </button>
          <p class="muted small">{t('scanNext')}</p>
        </div>
      </div>
    </main>
  );
}
