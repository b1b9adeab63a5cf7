// gifts.jsx: the rewards catalog at the till, with the till's terminal key
// (the rights a till already has, at its own store): the card in hand
// (typed or scanned), the gifts this store offers with what is left here
// (GET /v1/catalog), an order for the card (POST /v1/orders, one key per
// intended order so a resend never orders twice), and the card's orders
// at this store (GET /v1/orders?card=) to hand over, taking the
// co-payment, or to cancel (POST /v1/orders/{id}/hand-over, /cancel).
import { useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, money, points } from '../lib/i18n.js';
import { Alert, Field, useAction, useLoad } from '../lib/ui.jsx';
import { KeyButton, useFocus, useKeys } from './keys.jsx';
import { useTill } from './state.js';
import { strings } from './strings.js';
import '../lib/catalog.css';

const t = makeT(strings);

function newKey() {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return 'till-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function Gifts({ onExpired }) {
  const till = useTill();
  const bearer = till.pairing.key;
  const [typed, setTyped] = useState('');
  const [card, setCard] = useState(null);
  const [note, setNote] = useState(null);
  const [keys, setKeys] = useState({});
  const first = useRef(null);
  useFocus(first, true, []);
  const action = useAction();
  const catalog = useLoad(() => api('GET', '/v1/catalog', null, { bearer }), [bearer]);
  const orders = useLoad(
    () => (card ? api('GET', '/v1/orders?card=' + encodeURIComponent(card.number), null, { bearer }) : Promise.resolve(null)),
    [card && card.number, card && card.balance],
  );
  const fail = (e) => {
    if (e.status === 401) onExpired();
    throw e;
  };
  async function identify(ev) {
    ev?.preventDefault();
    if (!typed.trim()) return;
    setNote(null);
    const number = typed.replace(/\s+/g, '');
    await action.run(async () => {
      const c = await api('POST', '/v1/identify', { card: number }, { bearer }).catch(fail);
      setCard({ number, balance: c.balance });
    });
  }
  useKeys({ F9: () => identify() });
  async function order(item) {
    const key = keys[item.id] || newKey();
    setKeys({ ...keys, [item.id]: key });
    await action.run(async () => {
      const r = await api('POST', '/v1/orders', { card: card.number, item_id: item.id, key }, { bearer }).catch(fail);
      setKeys({ ...keys, [item.id]: undefined });
      setNote(t('giftOrdered', { id: r.id, name: r.item_name, pts: points(r.points), balance: points(r.balance) }));
      setCard({ ...card, balance: r.balance });
      catalog.reload();
    });
  }
  async function move(o, verb) {
    await action.run(async () => {
      const r = await api('POST', `/v1/orders/${o.id}/${verb}`, null, { bearer }).catch(fail);
      setNote(verb === 'hand-over'
        ? t(r.copay ? 'giftHandedCopay' : 'giftHanded', { id: r.id, name: r.item_name, m: money(r.copay) })
        : t('giftCancelled', { id: r.id, balance: points(r.balance) }));
      if (r.balance !== undefined) setCard({ ...card, balance: r.balance });
      catalog.reload();
      orders.reload();
    });
  }
  const items = catalog.data ? catalog.data.items : [];
  const open = orders.data ? orders.data.orders.filter((o) => o.state === 'ordered' || o.state === 'ready') : [];
  return (
    <main class="till-wrap">
      <div class="card">
        <h1>{t('giftsTitle')}</h1>
        <form class="row" onSubmit={identify} noValidate>
          <Field label={t('cardNumber')} name="gift-card" autocomplete="off" inputMode="numeric" inputRef={first}
            value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
          <KeyButton k="F9" type="submit" busy={action.busy} disabled={!typed.trim()}>
            {t('giftFind')}
          </KeyButton>
        </form>
        {card && <p>{t('giftCardBalance', { card: card.number, pts: points(card.balance) })}</p>}
        {note && <Alert kind="ok">{note}</Alert>}
        <Alert kind="error">{action.error ? action.error.message : null}</Alert>
      </div>
      {card && open.length > 0 && (
        <section class="card" aria-labelledby="gift-orders">
          <h2 id="gift-orders">{t('giftOrders')}</h2>
          <ul>
            {open.map((o) => (
              <li key={o.id}>
                {t('giftOrderLine', { id: o.id, name: o.item_name, pts: points(o.points) })}
                {o.copay ? ' · ' + t('giftCopay', { m: money(o.copay) }) : ''}{' '}
                <button type="button" class="btn btn-primary btn-small" onClick={() => move(o, 'hand-over')}
                  aria-label={t('giftHandOverN', { id: o.id })}>
                  {t('giftHandOver')}
                </button>{' '}
                <button type="button" class="btn btn-secondary btn-small" onClick={() => move(o, 'cancel')}
                  aria-label={t('giftCancelN', { id: o.id })}>
                  {t('giftCancel')}
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      <section class="card" aria-labelledby="gift-list">
        <h2 id="gift-list">{t('giftList')}</h2>
        {catalog.error && <Alert kind="error">{catalog.error.message}</Alert>}
        {catalog.data && items.length === 0 && <p class="muted">{t('giftNone')}</p>}
        <ul>
          {items.map((i) => {
            const left = i.unlimited ? null : i.stock.reduce((s, x) => s + x.qty, 0);
            return (
              <li key={i.id}>
                <strong>{i.name}</strong> · {points(i.price)}
                {i.copay ? ' · ' + t('giftCopay', { m: money(i.copay) }) : ''}
                {' · '}{left === null ? t('giftUnlimited') : t('giftLeft', { n: left })}{' '}
                <button type="button" class="btn btn-secondary btn-small" disabled={!card || left === 0}
                  onClick={() => order(i)} aria-label={t('giftOrderN', { name: i.name })}>
                  {t('giftOrder')}
                </button>
              </li>
            );
          })}
        </ul>
      </section>
    </main>
  );
}
