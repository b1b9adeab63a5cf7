// returns.jsx: a return against a receipt (POST /v1/returns): the card,
// the purchase's receipt number (and its store when it was made at
// another), and either the whole purchase or some lines by SKU and
// quantity. Sent with its own receipt number and resent until answered, as
// a purchase is (sender.js); the answer is shown as a receipt.
import { useRef, useState } from 'preact/hooks';
import { makeT, money, points } from '../lib/i18n.js';
import { Alert, Button, Check, Field } from '../lib/ui.jsx';
import { parseWhole } from './amounts.js';
import { KeyButton, useFocus, useKeys } from './keys.jsx';
import { Receipt } from './receipt.jsx';
import { onAnswer, resume, send, useSender } from './sender.js';
import { emptyReturn, getTill, nextReceipt, update, useTill } from './state.js';
import { strings } from './strings.js';

const t = makeT(strings);

onAnswer('return', (p, answer, error) => {
  const { ret } = getTill();
  if (error && error.status === 401) update(() => ({ keyRefused: true }));
  if (ret.receipt !== p.receipt) return;
  update(() => ({
    ret: answer
      ? { ...ret, done: { answer, cashier: p.cashier }, error: null }
      : { ...ret, error: { status: error.status, code: error.code, message: error.message, field: error.field, fields: error.fields } },
  }));
});

const emptyForm = () => ({ card: '', original: '', store: '', whole: true, lines: [{ sku: '', qty: '' }] });

export function Returns({ me }) {
  const till = useTill();
  const ret = till.ret;
  const sender = useSender();
  const sending = !!sender.pending && sender.pending.kind === 'return';
  const [f, setF] = useState(emptyForm);
  const [errs, setErrs] = useState({});
  const first = useRef(null);
  const next = useRef(null);
  useFocus(ret.done ? next : first, true, [!!ret.done]);

  function submit(ev) {
    ev?.preventDefault();
    if (sending || ret.done) return;
    const e = {};
    const body = { card: f.card.trim(), original_receipt: f.original.trim() };
    if (!body.card) e.card = t('required');
    if (!body.original_receipt) e.original_receipt = t('required');
    if (f.store.trim()) body.original_store = f.store.trim();
    if (!f.whole) {
      const lines = [];
      f.lines.forEach((l, i) => {
        const sku = l.sku.trim();
        if (!sku && !l.qty.trim()) return;
        if (!sku) e[`lines[${i}].sku`] = t('skuRequired');
        const line = { sku };
        if (l.qty.trim()) {
          const qty = parseWhole(l.qty, 1, 100000);
          if (qty === null) e[`lines[${i}].qty`] = t('qtyBad', { max: 100000 });
          line.qty = qty;
        }
        lines.push(line);
      });
      if (lines.length === 0) e['lines[0].sku'] = t('linesOrWhole');
      body.lines = lines;
    }
    setErrs(e);
    if (Object.keys(e).length) return;
    const receipt = ret.receipt || nextReceipt();
    body.receipt = receipt;
    update((s) => ({ ret: { ...s.ret, receipt, error: null } }));
    send({ kind: 'return', path: '/v1/returns', receipt, body, cashier: me.login });
  }
  function again() {
    setF(emptyForm());
    setErrs({});
    update(() => ({ ret: emptyReturn() }));
  }
  useKeys({ F9: () => submit(), F8: again, 'Alt+P': () => (ret.done ? print() : false) });

  if (ret.done) {
    const a = ret.done.answer;
    return (
      <main class="till-wrap done">
        <h1 class="no-print">{t('returnDone')}</h1>
        <Alert kind="ok">
          {t('returnFigures', { money: money(a.spend_reversed), reversed: points(a.earned_reversed), refunded: points(a.burned_refunded), balance: points(a.balance) })}
        </Alert>
        <div class="done-grid">
          <Receipt kind="return" answer={a} cashier={ret.done.cashier} pairing={till.pairing} />
          <div class="done-actions no-print">
            <KeyButton k="Alt+P" kind="secondary" onClick={() => print()}>
              {t('print')}
            </KeyButton>
            <button type="button" class="btn btn-primary" ref={next} aria-keyshortcuts="F8" onClick={again}>
              {t('newReturn')} <kbd class="key">F8</kbd>
            </button>
          </div>
        </div>
      </main>
    );
  }
  const server = ret.error;
  const byField = server && server.field ? { [server.field]: server.message } : {};
  const err = (name) => errs[name] || byField[name];
  const setLine = (i, k) => (e) => {
    const lines = f.lines.map((l, j) => (j === i ? { ...l, [k]: e.currentTarget.value } : l));
    setF({ ...f, lines });
  };
  return (
    <main class="till-wrap">
      <form class="card return-form" onSubmit={submit}>
        <h1>{t('returnTitle')}</h1>
        {sending && (
          <div class="alert alert-info" role="status">
            {t('sending', { receipt: sender.pending.receipt })}{' '}
            {sender.lastError && (
              <Button kind="link" type="button" onClick={resume}>
                {t('resendNow')}
              </Button>
            )}
          </div>
        )}
        {server && (
          <Alert kind="error">
            {server.code === 'receipt_conflict'
              ? t('conflictReturn', { receipt: ret.receipt })
              : server.field ? `${server.field}: ${server.message}` : server.message}{' '}
            {server.code === 'receipt_conflict' && (
              <Button kind="link" type="button" onClick={() => update((s) => ({ ret: { ...s.ret, receipt: nextReceipt(), error: null } }))}>
                {t('newNumber')}
              </Button>
            )}
          </Alert>
        )}
        <div class="row">
          <Field label={t('cardNumber')} name="card" autocomplete="off" inputMode="numeric" inputRef={first}
            value={f.card} error={err('card')} onInput={(e) => setF({ ...f, card: e.currentTarget.value })} />
          <Field label={t('originalReceipt')} name="original_receipt" autocomplete="off" value={f.original}
            error={err('original_receipt')} onInput={(e) => setF({ ...f, original: e.currentTarget.value })} />
          <Field label={t('originalStore')} name="original_store" autocomplete="off" value={f.store}
            hint={t('originalStoreHint')} error={err('original_store')}
            onInput={(e) => setF({ ...f, store: e.currentTarget.value })} />
        </div>
        <Check label={t('wholePurchase')} checked={f.whole} onChange={(e) => setF({ ...f, whole: e.currentTarget.checked })} />
        {!f.whole && (
          <fieldset class="return-lines">
            <legend>{t('returnLines')}</legend>
            {f.lines.map((l, i) => (
              <div class="row" key={i}>
                <Field label={t('skuN', { n: i + 1 })} autocomplete="off" value={l.sku}
                  error={err(`lines[${i}].sku`)} onInput={setLine(i, 'sku')} />
                <Field label={t('qtyN', { n: i + 1 })} inputMode="numeric" autocomplete="off" value={l.qty}
                  hint={t('qtyAllHint')} error={err(`lines[${i}].qty`)} onInput={setLine(i, 'qty')} />
              </div>
            ))}
            <Button kind="secondary" type="button" onClick={() => setF({ ...f, lines: [...f.lines, { sku: '', qty: '' }] })}>
              {t('addReturnLine')}
            </Button>
          </fieldset>
        )}
        <div class="pay-actions">
          <KeyButton k="F9" type="submit" busy={sending}>
            {t('makeReturn')}
          </KeyButton>
          <KeyButton k="F8" kind="secondary" type="button" onClick={again} disabled={sending}>
            {t('clear')}
          </KeyButton>
        </div>
        {ret.receipt && <p class="muted small">{t('receiptNo', { receipt: ret.receipt })}</p>}
      </form>
    </main>
  );
}
