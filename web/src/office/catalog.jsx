// catalog.jsx: the back office's rewards catalog (catalog.manage): the
// items with their price, co-payment, image (uploaded here, checked by the
// server) and stock per store; a new item; an order for a customer's card
// under a key made once per order; the orders with their state changes
// (ready, handed over, cancelled). Routes: GET /v1/catalog?all=1, POST and
// PATCH /v1/admin/catalog/items, PUT .../stock and .../image, POST and GET
// /v1/orders, POST /v1/orders/{id}/ready|hand-over|cancel (docs/api.md
// "Rewards catalog").
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, makeT, money, points } from '../lib/i18n.js';
import { Alert, Button, Check, Field, useLoad } from '../lib/ui.jsx';
import { ErrorAlert, LoadState, newKey, Panel, ScrollTable, useAction } from './people.jsx';
import { strings } from './catalog.strings.js';
import '../lib/catalog.css';

const t = makeT(strings);
const IMAGE_MAX = 512 * 1024;
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'];

function NewItem({ onDone, onExpired }) {
  const empty = { name: '', description: '', price: '', copay: '', kind: '', unlimited: false };
  const [form, setForm] = useState(empty);
  const [local, setLocal] = useState({});
  const act = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    const price = Number(form.price.trim());
    if (!Number.isInteger(price) || price <= 0) {
      setLocal({ price: t('priceWhole') });
      return;
    }
    setLocal({});
    const body = { name: form.name.trim(), price, unlimited: form.unlimited };
    if (form.description.trim()) body.description = form.description.trim();
    if (form.kind.trim()) body.kind = form.kind.trim();
    if (form.copay.trim()) body.copay = Math.round(Number(form.copay.replace(',', '.')) * 100);
    const r = await act.run(() => api('POST', '/v1/admin/catalog/items', body));
    if (r) {
      setForm(empty);
      onDone(r);
    }
  }
  const fields = { ...act.fields, ...local };
  const input = (name, props) => (
    <Field label={t(name)} name={'new-' + name} value={form[name]} error={fields[name]} autocomplete="off"
      onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })} {...props} />
  );
  return (
    <Panel title={t('newItem')}>
      <form onSubmit={submit} noValidate>
        <ErrorAlert error={act.error} shown={['name', 'price', 'copay', 'kind', 'description']} />
        <div class="row">
          {input('name', { required: true })}
          {input('price', { required: true, inputMode: 'numeric' })}
          {input('copay', { inputMode: 'decimal', hint: t('copayHint') })}
        </div>
        {input('description')}
        {input('kind', { hint: t('kindHint') })}
        <Check label={t('unlimited')} checked={form.unlimited}
          onChange={(e) => setForm({ ...form, unlimited: e.currentTarget.checked })} />
        <Button type="submit" busy={act.busy}>{t('add')}</Button>
      </form>
    </Panel>
  );
}

function Stock({ item, onDone, onExpired }) {
  const [store, setStore] = useState('');
  const [qty, setQty] = useState('');
  const act = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    const r = await act.run(() =>
      api('PUT', `/v1/admin/catalog/items/${item.id}/stock`, { stock: [{ store: store.trim(), qty: Number(qty) }] }));
    if (r) {
      setStore('');
      setQty('');
      onDone(r);
    }
  }
  return (
    <form class="cat-stock" onSubmit={submit} noValidate aria-label={t('stockOf', { name: item.name })}>
      <ErrorAlert error={act.error} shown={[]} />
      <div class="row">
        <Field label={t('store')} name={'store-' + item.id} value={store} autocomplete="off"
          onInput={(e) => setStore(e.currentTarget.value)} />
        <Field label={t('qty')} name={'qty-' + item.id} value={qty} inputMode="numeric" autocomplete="off"
          onInput={(e) => setQty(e.currentTarget.value)} />
      </div>
      <Button type="submit" kind="secondary" busy={act.busy} disabled={!store.trim() || qty === ''}>
        {t('setStock')}
      </Button>
    </form>
  );
}

function ImageUpload({ item, onDone, onExpired }) {
  const [local, setLocal] = useState(null);
  const act = useAction(onExpired);
  async function pick(ev) {
    const file = ev.currentTarget.files && ev.currentTarget.files[0];
    ev.currentTarget.value = '';
    if (!file) return;
    if (!IMAGE_TYPES.includes(file.type)) return setLocal(t('badType'));
    if (file.size > IMAGE_MAX) return setLocal(t('tooBig'));
    setLocal(null);
    const r = await act.run(() => api('PUT', `/v1/admin/catalog/items/${item.id}/image`, file));
    if (r) onDone(r, t('uploaded'));
  }
  const id = 'image-' + item.id;
  return (
    <div class="field">
      <label for={id}>{t('upload')}</label>
      <input id={id} type="file" accept={IMAGE_TYPES.join(',')} onChange={pick} aria-describedby={id + '-hint'} />
      <p class="hint" id={id + '-hint'}>{t('uploadHint')}</p>
      {local && <Alert kind="error">{local}</Alert>}
      <ErrorAlert error={act.error} shown={[]} />
    </div>
  );
}

function Items({ items, reload, onExpired }) {
  const [note, setNote] = useState(null);
  const act = useAction(onExpired);
  const done = (r, what) => {
    setNote(what || t('saved'));
    reload();
  };
  const toggle = async (it) => {
    const r = await act.run(() => api('PATCH', `/v1/admin/catalog/items/${it.id}`, { active: !it.active }));
    if (r) done(r);
  };
  return (
    <Panel title={t('items')}>
      {note && <Alert kind="ok">{note}</Alert>}
      <ErrorAlert error={act.error} shown={[]} />
      <ScrollTable wide label={t('items')} rows={items} rowKey={(r) => r.id}
        columns={[
          { key: 'image', label: t('image'), render: (r) =>
            r.image ? <img class="cat-thumb" src={r.image} alt={t('imageOf', { name: r.name })} /> : t('noImage') },
          { key: 'name', label: t('name') },
          { key: 'price', label: t('price'), num: true, render: (r) => points(r.price) + (r.kind ? ' ' + r.kind : '') },
          { key: 'copay', label: t('copay'), num: true, render: (r) => (r.copay ? money(r.copay) : t('none')) },
          { key: 'stock', label: t('stock'), render: (r) =>
            r.unlimited ? t('unlimitedStock') : r.stock.map((s) => `${s.store}: ${s.qty}`).join(', ') || t('none') },
          { key: 'active', label: t('active'), render: (r) => (r.active ? t('on') : t('off')) },
        ]} />
      {items.map((it) => (
        <details class="cat-item" key={it.id}>
          <summary>{t('edit')}: {it.name}</summary>
          <ImageUpload item={it} onDone={done} onExpired={onExpired} />
          {!it.unlimited && <Stock item={it} onDone={done} onExpired={onExpired} />}
          <Button kind="secondary" busy={act.busy} onClick={() => toggle(it)}>
            {it.active ? t('deactivate') : t('activate')}
          </Button>
        </details>
      ))}
    </Panel>
  );
}

function NewOrder({ items, onDone, onExpired }) {
  const [form, setForm] = useState({ card: '', item: '', store: '' });
  const [key, setKey] = useState(() => newKey('ORD'));
  const act = useAction(onExpired);
  const edit = (name) => (e) => {
    setForm({ ...form, [name]: e.currentTarget.value });
    setKey(newKey('ORD'));
  };
  async function submit(ev) {
    ev.preventDefault();
    const body = { card: form.card.trim(), item_id: Number(form.item), store: form.store.trim(), key };
    const r = await act.run(() => api('POST', '/v1/orders', body));
    if (r) onDone();
  }
  const offered = items.filter((i) => i.active);
  return (
    <Panel title={t('order')}>
      <form onSubmit={submit} noValidate>
        <ErrorAlert error={act.error} shown={['card', 'store']} />
        {act.done && (
          <Alert kind="ok">{t('ordered', { id: act.done.id, points: points(act.done.points), balance: points(act.done.balance) })}</Alert>
        )}
        <div class="row">
          <Field label={t('card')} name="order-card" value={form.card} error={act.fields.card} inputMode="numeric"
            autocomplete="off" onInput={edit('card')} />
          <Field label={t('item')} name="order-item" kind="select" value={form.item} onChange={edit('item')}>
            <option value="">—</option>
            {offered.map((i) => <option value={String(i.id)} key={i.id}>{i.name} · {points(i.price)}</option>)}
          </Field>
          <Field label={t('store')} name="order-store" value={form.store} error={act.fields.store} autocomplete="off"
            onInput={edit('store')} />
        </div>
        <Button type="submit" busy={act.busy} disabled={!form.card.trim() || !form.item || !form.store.trim()}>
          {t('orderDo')}
        </Button>
      </form>
    </Panel>
  );
}

function Orders({ stamp, onExpired }) {
  const [state, setState] = useState('');
  const list = useLoad(() => api('GET', '/v1/orders' + (state ? '?state=' + state : '')), [state, stamp]);
  const [note, setNote] = useState(null);
  const act = useAction(onExpired);
  async function move(o, verb) {
    const r = await act.run(() => api('POST', `/v1/orders/${o.id}/${verb}`));
    if (r) {
      setNote(t('moved', { id: r.id, state: t('state.' + r.state) }));
      list.reload();
    }
  }
  return (
    <Panel title={t('orders')}>
      <Field label={t('state')} name="orders-state" kind="select" value={state}
        onChange={(e) => setState(e.currentTarget.value)}>
        <option value="">{t('anyState')}</option>
        {['ordered', 'ready', 'handed_over', 'cancelled'].map((s) => <option value={s} key={s}>{t('state.' + s)}</option>)}
      </Field>
      {note && <Alert kind="ok">{note}</Alert>}
      <ErrorAlert error={act.error} shown={[]} />
      <LoadState load={list} />
      {list.data && (
        <ScrollTable wide label={t('orders')} rows={list.data.orders} rowKey={(r) => r.id} empty={t('noOrders')}
          columns={[
            { key: 'id', label: '№', num: true },
            { key: 'item_name', label: t('item') },
            { key: 'card', label: t('card') },
            { key: 'store', label: t('store') },
            { key: 'points', label: t('points'), num: true, render: (r) => points(r.points) },
            { key: 'copay', label: t('copay'), num: true, render: (r) => (r.copay ? money(r.copay) : t('none')) },
            { key: 'state', label: t('state'), render: (r) => t('state.' + r.state) },
            { key: 'source', label: t('source'), render: (r) => t('source.' + r.source) },
            { key: 'created_at', label: t('when'), render: (r) => dateTime(r.created_at) },
            { key: 'actions', label: t('actions'), render: (r) => (
              <span class="cat-actions">
                {r.state === 'ordered' && (
                  <Button kind="secondary" onClick={() => move(r, 'ready')} aria-label={t('ready') + ' ' + r.id}>{t('ready')}</Button>
                )}
                {(r.state === 'ordered' || r.state === 'ready') && (
                  <>
                    <Button kind="secondary" onClick={() => move(r, 'hand-over')} aria-label={t('handOver') + ' ' + r.id}>{t('handOver')}</Button>
                    <Button kind="secondary" onClick={() => move(r, 'cancel')} aria-label={t('cancel') + ' ' + r.id}>{t('cancel')}</Button>
                  </>
                )}
              </span>
            ) },
          ]} />
      )}
    </Panel>
  );
}

export function Catalog({ onExpired }) {
  const items = useLoad(() => api('GET', '/v1/catalog?all=1'), []);
  const [stamp, setStamp] = useState(0);
  const [added, setAdded] = useState(null);
  return (
    <>
      <h1>{t('title')}</h1>
      <p class="muted">{t('about')}</p>
      {added && <Alert kind="ok">{t('added', { name: added })}</Alert>}
      <LoadState load={items} />
      {items.data && <Items items={items.data.items} reload={items.reload} onExpired={onExpired} />}
      <NewItem onExpired={onExpired} onDone={(r) => { setAdded(r.name); items.reload(); }} />
      {items.data && (
        <NewOrder items={items.data.items} onExpired={onExpired}
          onDone={() => { setStamp(stamp + 1); items.reload(); }} />
      )}
      <Orders stamp={stamp} onExpired={onExpired} />
    </>
  );
}
