// catalog.jsx: the rewards catalog in the customer's cabinet: the offered
// gifts and services (GET /v1/me/catalog) with their price, co-payment and
// what each store has; ordering one for the customer's card at a store
// (POST /v1/me/orders, a key per filled-in order so a resend never orders
// twice); the customer's orders (GET /v1/me/orders) and cancelling one
// while it is still "ordered" (POST /v1/me/orders/{id}/cancel).
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, money } from '../lib/i18n.js';
import { Alert, Button, useLoad } from '../lib/ui.jsx';
import { mainCard, newKey, pts, t, useAction } from './util.js';
import '../lib/catalog.css';

/* The stores an item may be ordered at: its stock's with some left; a
 * service (unlimited) at any store the catalog names. */
function storesOf(item, all) {
  if (item.unlimited) return all;
  return item.stock.filter((s) => s.qty > 0).map((s) => s.store);
}

function Item({ item, stores, card, onOrdered, onExpired }) {
  const choices = storesOf(item, stores);
  const [store, setStore] = useState(choices[0] || '');
  const [key, setKey] = useState(() => newKey('cat'));
  const act = useAction(onExpired);
  const id = 'item-' + item.id;
  async function order() {
    const r = await act.run(() =>
      api('POST', '/v1/me/orders', { card: card.card, item_id: item.id, store, key }));
    if (r) {
      setKey(newKey('cat'));
      onOrdered(r);
    }
  }
  return (
    <article class="card" aria-labelledby={id}>
      {item.image && <img class="cat-img" src={item.image} alt="" />}
      <h2 id={id}>{item.name}</h2>
      {item.description && <p>{item.description}</p>}
      <p class="cat-price">
        {pts(item.price)}
        {item.copay ? ' ' + t('cat_copay', { m: money(item.copay) }) : ''}
      </p>
      {choices.length === 0 ? (
        <p class="muted">{t('cat_out')}</p>
      ) : (
        <>
          <div class="field">
            <label for={id + '-store'}>{t('cat_store')}</label>
            <select id={id + '-store'} value={store} onChange={(e) => { setStore(e.currentTarget.value); setKey(newKey('cat')); }}>
              {choices.map((s) => {
                const left = item.stock.find((x) => x.store === s);
                return (
                  <option value={s} key={s}>
                    {left ? t('cat_store_left', { store: s, n: left.qty }) : s}
                  </option>
                );
              })}
            </select>
          </div>
          <Alert kind="error">{act.err ? act.err.message : null}</Alert>
          <Button onClick={order} busy={act.busy} disabled={!card || !store}
            aria-label={t('cat_order_item', { name: item.name })}>
            {t('cat_order')}
          </Button>
        </>
      )}
    </article>
  );
}

export function Catalog({ me, reload, onExpired }) {
  const items = useLoad(() => api('GET', '/v1/me/catalog'), []);
  const orders = useLoad(() => api('GET', '/v1/me/orders'), []);
  const [done, setDone] = useState(null);
  const act = useAction(onExpired);
  const card = mainCard(me);
  const list = items.data ? items.data.items : [];
  const stores = [...new Set(list.flatMap((i) => i.stock.map((s) => s.store)))].sort();
  const after = (r, word) => {
    setDone(t(word, { id: r.id, name: r.item_name, pts: pts(r.points), balance: pts(r.balance) }));
    items.reload();
    orders.reload();
    reload();
  };
  async function cancel(o) {
    const r = await act.run(() => api('POST', `/v1/me/orders/${o.id}/cancel`));
    if (r) after(r, 'cat_cancelled');
  }
  return (
    <div class="cab-catalog">
      <h1>{t('cat_title')}</h1>
      <p class="muted">{card ? t('cat_intro', { pts: pts(card.available) }) : t('no_cards')}</p>
      {done && <Alert kind="ok">{done}</Alert>}
      {items.error && <Alert kind="error">{items.error.message}</Alert>}
      {items.data && list.length === 0 && <p class="muted">{t('cat_empty')}</p>}
      <div class="cat-grid">
        {list.map((i) => (
          <Item item={i} stores={stores} card={card} key={i.id} onExpired={onExpired}
            onOrdered={(r) => after(r, 'cat_ordered')} />
        ))}
      </div>
      <h2>{t('cat_my_orders')}</h2>
      <Alert kind="error">{act.err ? act.err.message : null}</Alert>
      {orders.data && orders.data.orders.length === 0 && <p class="muted">{t('cat_no_orders')}</p>}
      {orders.data && orders.data.orders.length > 0 && (
        <ul class="cab-orders">
          {orders.data.orders.map((o) => (
            <li key={o.id}>
              <strong>{o.item_name}</strong>
              {o.qty > 1 ? ' ×' + o.qty : ''} · {pts(o.points)} · {t('cat_at', { store: o.store })} ·{' '}
              {dateTime(o.created_at)} · <span class="badge">{t('cat_state_' + o.state)}</span>
              {o.state === 'ordered' && (
                <>
                  {' '}
                  <Button kind="secondary" class="btn btn-secondary btn-small" busy={act.busy}
                    onClick={() => cancel(o)} aria-label={t('cat_cancel_item', { name: o.item_name, id: o.id })}>
                    {t('cat_cancel')}
                  </Button>
                </>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
