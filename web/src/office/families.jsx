// families.jsx: the back office's families section: create a family for
// its owner, open one, add and remove members, allow or forbid each to
// spend the shared points, and the pot's history (who earned and spent
// what). Routes: docs/api.md "Families".
import { useState } from 'preact/hooks';
import { api, ApiError } from '../lib/api.js';
import { dateTime, makeT, points } from '../lib/i18n.js';
import { Alert, Button, Check, Field, navigate } from '../lib/ui.jsx';
import {
  BalanceFigures, CustomerLink, ErrorAlert, HistoryTable, LoadState, PageHead, Panel, ScrollTable, tp,
  useAction, useApiLoad,
} from './people.jsx';
import { strings } from './families.strings.js';

const t = makeT(strings);

/* "12" is customer 12; a longer number is a card: its customer. */
async function customerOf(text) {
  const s = text.replace(/\s+/g, '');
  if (/^\d{1,10}$/.test(s)) return Number(s);
  const card = await api('GET', '/v1/admin/cards/' + encodeURIComponent(s));
  if (!card.customer) throw new ApiError(404, { code: 'not_found', field: 'card', message: t('noCard', { card: s }) });
  return card.customer;
}

/* The field a refusal names, shown under the "customer" input. */
const whoError = (a) => a.fields.owner || a.fields.customer || a.fields.card;

export function Families({ route, onExpired }) {
  const id = route.path.split('/')[2];
  if (id && /^\d+$/.test(id)) return <FamilyView id={id} route={route} onExpired={onExpired} />;
  return <Start route={route} onExpired={onExpired} />;
}

function Start({ route, onExpired }) {
  const [owner, setOwner] = useState('');
  const [open, setOpen] = useState('');
  const create = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    const fam = await create.run(async () => api('POST', '/v1/admin/families', { owner: await customerOf(owner) }));
    if (fam) navigate('/families/' + fam.id);
  }
  function go(ev) {
    ev.preventDefault();
    if (/^\d+$/.test(open.trim())) navigate('/families/' + open.trim());
  }
  return (
    <>
      <h1>{t('title')}</h1>
      {route.query.get('closed') && <Alert kind="ok">{t('closed')}</Alert>}
      <p class="muted">{t('about')}</p>
      <div class="grid">
        <Panel title={t('create')}>
          <form onSubmit={submit}>
            <Field label={t('who')} name="owner" value={owner} required hint={t('whoHint')} inputMode="numeric"
              error={whoError(create)} onInput={(e) => setOwner(e.currentTarget.value)} />
            <Button type="submit" busy={create.busy}>{t('create')}</Button>
          </form>
          <ErrorAlert error={create.error} shown={['owner', 'customer', 'card']} />
        </Panel>
        <Panel title={t('openTitle')}>
          <form onSubmit={go}>
            <Field label={t('familyId')} name="family" type="number" min="1" value={open} required
              onInput={(e) => setOpen(e.currentTarget.value)} />
            <Button type="submit" kind="secondary">{tp('open')}</Button>
          </form>
        </Panel>
      </div>
    </>
  );
}

function FamilyView({ id, onExpired }) {
  const f = useApiLoad(() => api('GET', '/v1/admin/families/' + id), [id], onExpired);
  const act = useAction(onExpired);
  const [who, setWho] = useState('');
  const [maySpend, setMaySpend] = useState(false);
  const add = useAction(onExpired);
  if (!f.data) return <><h1>{tp('familyN', { id })}</h1><LoadState load={f} /><a href="#/families">{tp('back')}</a></>;
  const fam = f.data;
  const base = `/v1/admin/families/${id}/members`;
  async function setSpend(m) {
    const done = await act.run(async () => {
      await api('PATCH', `${base}/${m.customer}`, { may_spend: !m.may_spend });
      return t('changed');
    });
    if (done) f.reload();
  }
  async function leave(m) {
    const done = await act.run(async () => {
      await api('POST', `${base}/${m.customer}/leave`);
      return t('left', { id: m.customer });
    });
    if (!done) return;
    if (m.owner) navigate('/families?closed=1');
    else f.reload();
  }
  async function submit(ev) {
    ev.preventDefault();
    const done = await add.run(async () => {
      const customer = await customerOf(who);
      await api('POST', base, { customer, may_spend: maySpend });
      return t('added', { id: customer });
    });
    if (done) {
      setWho('');
      setMaySpend(false);
      f.reload();
    }
  }
  const others = fam.members.filter((m) => !m.owner).length;
  return (
    <>
      <PageHead title={tp('familyN', { id })} back="#/families" />
      <Panel title={t('pot')}>
        <BalanceFigures balance={fam.balance} available={fam.available} />
        <p>{t('owner')}: <CustomerLink id={fam.owner} /></p>
      </Panel>
      <Panel title={t('members')}>
        {act.done && <Alert kind="ok">{act.done}</Alert>}
        <ErrorAlert error={act.error} />
        <ScrollTable
          wide
          label={t('members')}
          rows={fam.members}
          rowKey={(m) => m.customer}
          columns={[
            { key: 'customer', label: tp('customer'), render: (m) => <CustomerLink id={m.customer} /> },
            { key: 'role', label: t('role'), render: (m) => (m.owner ? t('ownerRole') : t('memberRole')) },
            { key: 'may_spend', label: t('maySpend'), render: (m) => (m.may_spend ? tp('yes') : tp('no')) },
            { key: 'joined_at', label: t('joined'), render: (m) => dateTime(m.joined_at) },
            {
              key: 'do',
              label: tp('actions'),
              render: (m) => (
                <div class="actions">
                  {!m.owner && (
                    <Button kind="secondary" busy={act.busy} onClick={() => setSpend(m)}
                      aria-label={`${m.may_spend ? t('forbid') : t('allow')}: ${tp('customerN', { id: m.customer })}`}>
                      {m.may_spend ? t('forbid') : t('allow')}
                    </Button>
                  )}
                  {(!m.owner || others === 0) && (
                    <Button kind="secondary" busy={act.busy} onClick={() => leave(m)}
                      aria-label={`${m.owner ? t('leaveOwner') : t('leave')}: ${tp('customerN', { id: m.customer })}`}>
                      {m.owner ? t('leaveOwner') : t('leave')}
                    </Button>
                  )}
                </div>
              ),
            },
          ]}
        />
        <h3>{t('add')}</h3>
        <form onSubmit={submit}>
          <Field label={t('who')} name="member" value={who} required hint={t('whoHint')} inputMode="numeric"
            error={whoError(add)} onInput={(e) => setWho(e.currentTarget.value)} />
          <Check label={t('addMaySpend')} checked={maySpend} onChange={(e) => setMaySpend(e.currentTarget.checked)} />
          <Button type="submit" busy={add.busy}>{t('add')}</Button>
        </form>
        <ErrorAlert error={add.error} shown={['customer', 'card']} />
        {add.done && <Alert kind="ok">{add.done}</Alert>}
      </Panel>
      <Panel title={t('history')}>
        <HistoryTable history={fam.history} />
      </Panel>
    </>
  );
}
