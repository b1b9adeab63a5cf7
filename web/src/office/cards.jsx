// cards.jsx: the back office's cards section: look a card up (state,
// owner, balance, lots, events), block, unblock or replace it, set or clear
// the account's individual discount, issue a batch and download its print
// file. Routes: docs/api.md "Cards".
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, makeT, points } from '../lib/i18n.js';
import { Alert, Button, Field, navigate } from '../lib/ui.jsx';
import {
  CardLink, CustomerLink, ErrorAlert, Facts, LoadState, LotsTable, PageHead, Panel, ScrollTable, StateBadge,
  mayOf, tp, useAction, useApiLoad,
} from './people.jsx';
import { strings } from './cards.strings.js';

const t = makeT(strings);
const csvPath = (id) => `/v1/admin/card-batches/${encodeURIComponent(id)}/cards.csv`;

export function Cards({ me, route, onExpired }) {
  const number = route.path.split('/')[2];
  if (number) return <CardView number={decodeURIComponent(number)} me={me} route={route} onExpired={onExpired} />;
  return <Lookup me={me} onExpired={onExpired} />;
}

function Lookup({ me, onExpired }) {
  const may = mayOf(me);
  const [number, setNumber] = useState('');
  const input = useRef(null);
  useEffect(() => input.current && input.current.focus(), []);
  function submit(ev) {
    ev.preventDefault();
    const n = number.replace(/\s+/g, '');
    if (n) navigate('/cards/' + encodeURIComponent(n));
  }
  return (
    <>
      <h1>{t('title')}</h1>
      <form class="card inline" onSubmit={submit} role="search" aria-label={t('lookup')}>
        <Field label={t('number')} name="card" value={number} inputRef={input} inputMode="numeric"
          hint={t('numberHint')} onInput={(e) => setNumber(e.currentTarget.value)} />
        <Button type="submit">{tp('open')}</Button>
      </form>
      {may('card.issue') && <Batches onExpired={onExpired} />}
    </>
  );
}

function CardView({ number, me, route, onExpired }) {
  const may = mayOf(me);
  const c = useApiLoad(() => api('GET', '/v1/admin/cards/' + encodeURIComponent(number)), [number], onExpired);
  const [note, setNote] = useState(null);
  useEffect(() => setNote(route.query.get('replaced') ? t('replaced', { card: number }) : null), [number]);
  if (!c.data) return <><h1>{t('cardTitle', { card: number })}</h1><LoadState load={c} /><a href="#/cards">{tp('back')}</a></>;
  const card = c.data;
  /* After an action the card's answer is the new state. */
  const changed = (msg) => {
    setNote(msg);
    c.reload();
  };
  return (
    <>
      <PageHead title={t('cardTitle', { card: card.card })} back="#/cards">
        {may('adjust') && card.state !== 'replaced' && (
          <a class="btn btn-secondary" href={'#/adjustments?card=' + encodeURIComponent(card.card)}>{t('adjust')}</a>
        )}
      </PageHead>
      {note && <Alert kind="ok">{note}</Alert>}
      <section class="card" aria-label={t('cardTitle', { card: card.card })}>
        <Facts
          items={[
            [tp('state'), <StateBadge group="card" state={card.state} />],
            [t('registered'), card.registered ? tp('yes') : tp('no')],
            [tp('customer'), card.customer ? <CustomerLink id={card.customer} /> : t('noCustomer')],
            [t('batch'), card.batch && (may('card.issue')
              ? <a href={csvPath(card.batch.id)} download>{card.batch.name}</a>
              : card.batch.name)],
            [t('maySpend'), card.may_spend ? tp('yes') : tp('no')],
            [t('blockReason'), card.block_reason],
            [t('replacedBy'), card.replaced_by && <CardLink number={card.replaced_by} />],
            [tp('balance'), points(card.balance)],
            [tp('available'), points(card.available)],
            [t('discount'), card.personal_discount || t('noDiscount')],
          ]}
        />
      </section>
      {card.lots && card.lots.length > 0 && <section class="card"><LotsTable lots={card.lots} /></section>}
      {may('card.manage') && <Manage card={card} onExpired={onExpired} changed={changed} />}
      {may('discount') && card.state !== 'replaced' && <Discount card={card} onExpired={onExpired} changed={changed} />}
      <Panel title={t('events')}>
        <ScrollTable
          wide
          label={t('events')}
          rows={card.events}
          rowKey={(ev) => ev.id}
          columns={[
            { key: 'at', label: tp('at'), render: (ev) => dateTime(ev.at) },
            { key: 'from', label: t('from'), render: (ev) => (ev.from ? <StateBadge group="card" state={ev.from} /> : '—') },
            { key: 'to', label: t('to'), render: (ev) => <StateBadge group="card" state={ev.to} /> },
            { key: 'actor', label: tp('actor') },
            { key: 'reason', label: tp('reason') },
            { key: 'other_card', label: t('other'), render: (ev) => <CardLink number={ev.other_card} /> },
          ]}
        />
      </Panel>
    </>
  );
}

/* Block or unblock, and replace: each with its reason. */
function Manage({ card, onExpired, changed }) {
  const [reason, setReason] = useState('');
  const [replaceReason, setReplaceReason] = useState('');
  const [newCard, setNewCard] = useState('');
  const state = useAction(onExpired);
  const repl = useAction(onExpired);
  const path = '/v1/admin/cards/' + encodeURIComponent(card.card);
  const blocked = card.state === 'blocked';
  async function toggle(ev) {
    ev.preventDefault();
    const body = blocked && !reason.trim() ? {} : { reason: reason.trim() };
    const done = await state.run(() => api('POST', path + (blocked ? '/unblock' : '/block'), body));
    if (done) {
      setReason('');
      changed(blocked ? t('unblocked') : t('blocked'));
    }
  }
  async function replace(ev) {
    ev.preventDefault();
    const body = { reason: replaceReason.trim() };
    if (newCard.trim()) body.new_card = newCard.trim();
    const done = await repl.run(() => api('POST', path + '/replace', body));
    if (done) navigate(`/cards/${encodeURIComponent(done.card)}?replaced=1`);
  }
  if (card.state === 'replaced') return null;
  return (
    <div class="grid">
      <Panel title={blocked ? t('unblockTitle') : t('blockTitle')}>
        <form onSubmit={toggle}>
          <Field label={blocked ? t('reasonOptional') : tp('reason')} name="reason" value={reason}
            required={!blocked} hint={blocked ? null : t('blockHint')} error={state.fields.reason}
            onInput={(e) => setReason(e.currentTarget.value)} />
          <Button type="submit" kind={blocked ? 'secondary' : 'danger'} busy={state.busy}>
            {blocked ? t('unblock') : t('block')}
          </Button>
        </form>
        <ErrorAlert error={state.error} shown={['reason']} />
      </Panel>
      <Panel title={t('replaceTitle')}>
        <form onSubmit={replace}>
          <Field label={tp('reason')} name="replace_reason" value={replaceReason} required
            error={repl.fields.reason} onInput={(e) => setReplaceReason(e.currentTarget.value)} />
          <Field label={t('newCard')} name="new_card" value={newCard} inputMode="numeric" hint={t('newCardHint')}
            error={repl.fields.new_card} onInput={(e) => setNewCard(e.currentTarget.value)} />
          <Button type="submit" kind="secondary" busy={repl.busy}>{t('replace')}</Button>
        </form>
        <ErrorAlert error={repl.error} shown={['reason', 'new_card']} />
      </Panel>
    </div>
  );
}

function Discount({ card, onExpired, changed }) {
  const [percent, setPercent] = useState('');
  const act = useAction(onExpired);
  const path = '/v1/admin/cards/' + encodeURIComponent(card.card) + '/discount';
  async function set(ev) {
    ev.preventDefault();
    const done = await act.run(() => api('POST', path, { percent: percent.trim().replace(',', '.') }));
    if (done) {
      setPercent('');
      changed(t('discountSet', { rate: done.personal_discount }));
    }
  }
  async function clear() {
    const done = await act.run(() => api('DELETE', path));
    if (done) changed(t('discountCleared'));
  }
  return (
    <Panel title={t('discountTitle')}>
      <p>{t('discount')}: {card.personal_discount || t('noDiscount')}</p>
      <form class="inline" onSubmit={set}>
        <Field label={t('percent')} name="percent" value={percent} inputMode="decimal" required
          hint={t('percentHint')} error={act.fields.percent} onInput={(e) => setPercent(e.currentTarget.value)} />
        <Button type="submit" busy={act.busy}>{t('setDiscount')}</Button>
        {card.personal_discount && (
          <Button type="button" kind="secondary" busy={act.busy} onClick={clear}>{t('clearDiscount')}</Button>
        )}
      </form>
      <ErrorAlert error={act.error} shown={['percent']} />
    </Panel>
  );
}

/* Issue a batch (at most 10 000 cards a request) and get its print file. */
function Batches({ onExpired }) {
  const [form, setForm] = useState({ name: '', count: '100' });
  const [batchId, setBatchId] = useState('');
  const issue = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    await issue.run(() => api('POST', '/v1/admin/card-batches', { name: form.name.trim(), count: Number(form.count) }));
  }
  const done = issue.done;
  return (
    <Panel title={t('batches')}>
      <form onSubmit={submit} noValidate>
        <div class="row">
          <Field label={t('batchName')} name="batch_name" value={form.name} required hint={t('batchNameHint')}
            error={issue.fields.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
          <Field label={t('count')} name="count" type="number" min="1" max="10000" value={form.count} required
            hint={t('countHint')} error={issue.fields.count}
            onInput={(e) => setForm({ ...form, count: e.currentTarget.value })} />
        </div>
        <Button type="submit" busy={issue.busy}>{t('issue')}</Button>
      </form>
      <ErrorAlert error={issue.error} shown={['name', 'count']} />
      {done && (
        <div class="alert alert-ok" role="status">
          <p>{t('issued', { n: done.batch.count, name: done.batch.name, id: done.batch.id })}</p>
          <p><a href={csvPath(done.batch.id)} download>{t('csv')}</a></p>
          <p class="muted">{t('firstCards')}: {done.cards.slice(0, 5).join(', ')}{done.cards.length > 5 ? '…' : ''}</p>
        </div>
      )}
      <h3>{t('batchCsv')}</h3>
      <div class="inline row">
        <Field label={t('batchId')} name="batch_id" type="number" min="1" value={batchId}
          onInput={(e) => setBatchId(e.currentTarget.value)} />
        {/^\d+$/.test(batchId) && (
          <div class="field"><a class="btn btn-secondary" href={csvPath(batchId)} download>{t('download')}</a></div>
        )}
      </div>
    </Panel>
  );
}
