// customers.jsx: the back office's customers section: search (name, phone,
// e-mail, card), a customer's view (personal data, cards with lots and
// balance, history explained, family, notification preferences, messages
// sent), editing the personal data, adding a card, erasing, and
// registering a new customer. Routes: docs/api.md "Customers".
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { date, dateTime, makeT, points } from '../lib/i18n.js';
import { Alert, Button, Check, Field, navigate } from '../lib/ui.jsx';
import {
  BalanceFigures, CardLink, ErrorAlert, Facts, HistoryTable, LoadState, LotsTable, PageHead, Panel,
  ScrollTable, StateBadge, customerName, mayOf, tp, useAction, useApiLoad,
} from './people.jsx';
import { strings } from './customers.strings.js';

const t = makeT(strings);
const BY = ['name', 'phone', 'email', 'card'];

export function Customers({ me, route, onExpired }) {
  const parts = route.path.split('/');
  const id = parts[2];
  if (id === 'new') return <Register me={me} onExpired={onExpired} />;
  if (id && /^\d+$/.test(id)) {
    if (parts[3] === 'edit') return <Edit id={id} onExpired={onExpired} />;
    return <View id={id} me={me} route={route} onExpired={onExpired} />;
  }
  return <Search me={me} route={route} onExpired={onExpired} />;
}

/* The search: its terms live in the route (#/customers?by=name&q=...), so
 * going back from a customer shows the same results. */
function Search({ me, route, onExpired }) {
  const may = mayOf(me);
  const qBy = BY.includes(route.query.get('by')) ? route.query.get('by') : 'name';
  const qTerm = route.query.get('q') || '';
  const [by, setBy] = useState(qBy);
  const [term, setTerm] = useState(qTerm);
  const input = useRef(null);
  useEffect(() => {
    setBy(qBy);
    setTerm(qTerm);
  }, [qBy, qTerm]);
  useEffect(() => input.current && input.current.focus(), []);
  const found = useApiLoad(
    () => (qTerm ? api('POST', '/v1/admin/customers/search', { [qBy]: qTerm }) : Promise.resolve(null)),
    [qBy, qTerm],
    onExpired,
  );
  function submit(ev) {
    ev.preventDefault();
    if (!term.trim()) return;
    navigate('/customers?' + new URLSearchParams({ by, q: term.trim() }).toString());
  }
  const fields = found.error ? found.error.byField() : {};
  const rows = found.data ? found.data.customers : [];
  return (
    <>
      <div class="head">
        <h1>{t('title')}</h1>
        {may('customer.register') && (
          <a class="btn btn-secondary" href="#/customers/new">{t('register')}</a>
        )}
      </div>
      <form class="card" onSubmit={submit} role="search" aria-label={t('searchTitle')}>
        <div class="row">
          <Field label={t('by')} kind="select" name="by" value={by} onChange={(e) => setBy(e.currentTarget.value)}>
            {BY.map((b) => (
              <option value={b} key={b}>{t('by.' + b)}</option>
            ))}
          </Field>
          <Field label={t('term')} name="q" value={term} inputRef={input} hint={t('hint.' + by)}
            error={fields[qBy]} type={by === 'email' ? 'email' : 'search'}
            onInput={(e) => setTerm(e.currentTarget.value)} />
          <div class="field">
            <Button type="submit" busy={found.loading && !!qTerm}>{tp('search')}</Button>
          </div>
        </div>
      </form>
      {found.error && !fields[qBy] && <ErrorAlert error={found.error} />}
      {found.data && (
        <ScrollTable
          caption={t('results', { n: rows.length })}
          empty={t('noResults')}
          rows={rows}
          rowKey={(c) => c.id}
          columns={[
            { key: 'name', label: t('name'), render: (c) => <a href={'#/customers/' + c.id}>{customerName(c)}</a> },
            { key: 'phone', label: t('phone') },
            { key: 'email', label: t('email') },
            { key: 'cards', label: tp('cards'), render: (c) => c.cards.map((k) => k.number).join(', ') || '—' },
            { key: 'balance', label: tp('balance'), num: true, render: (c) => points(c.balance) },
          ]}
        />
      )}
    </>
  );
}

function View({ id, me, route, onExpired }) {
  const may = mayOf(me);
  const c = useApiLoad(() => api('GET', '/v1/admin/customers/' + id), [id], onExpired);
  if (!c.data) return <><h1>{tp('customerN', { id })}</h1><LoadState load={c} /></>;
  const cust = c.data;
  const erased = cust.state === 'erased';
  return (
    <>
      <PageHead title={customerName(cust)} back="#/customers">
        {!erased && may('customer.edit') && (
          <a class="btn btn-secondary" href={'#/customers/' + id + '/edit'}>{t('edit')}</a>
        )}
      </PageHead>
      {route.query.get('saved') && <Alert kind="ok">{t('saved')}</Alert>}
      <Personal cust={cust} />
      <Cards cust={cust} may={may} onExpired={onExpired} reload={c.reload} />
      <Family cust={cust} may={may} onExpired={onExpired} />
      <History id={id} onExpired={onExpired} />
      <Prefs id={id} onExpired={onExpired} editable={!erased && may('customer.edit')} />
      {may('notify.read') && <Messages id={id} onExpired={onExpired} />}
      {!erased && may('customer.erase') && <Erase cust={cust} onExpired={onExpired} reload={c.reload} />}
    </>
  );
}

function Personal({ cust }) {
  const consent = cust.consent && cust.consent.given
    ? t('consentGiven', { at: dateTime(cust.consent.at), version: cust.consent.text_version || '—' })
    : t('consentNone');
  const attrs = cust.attributes ? Object.entries(cust.attributes).map(([k, v]) => `${k}: ${v}`).join('; ') : '';
  return (
    <Panel title={t('personal')}>
      <Facts
        items={[
          [t('name'), cust.full_name],
          [t('phone'), cust.phone],
          [t('email'), cust.email],
          [t('birthday'), cust.birthday && date(cust.birthday)],
          [t('receiptNo'), cust.receipt],
          [t('externalId'), cust.external_id],
          [t('consent'), consent],
          [t('attributes'), attrs],
          [t('created'), dateTime(cust.created_at)],
          [cust.erased_at ? t('erasedAt') : t('updated'), dateTime(cust.erased_at || cust.updated_at)],
        ]}
      />
    </Panel>
  );
}

function Cards({ cust, may, onExpired, reload }) {
  /* The lots are the account's: any of its cards shows them. */
  const first = cust.cards.length ? cust.cards[0].number : null;
  const detail = useApiLoad(
    () => (first && may('card.read') ? api('GET', '/v1/admin/cards/' + encodeURIComponent(first)) : Promise.resolve(null)),
    [first, cust.balance],
    onExpired,
  );
  const [card, setCard] = useState('');
  const add = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    const done = await add.run(async () => {
      await api('POST', `/v1/admin/customers/${cust.id}/cards`, { card: card.trim() });
      return t('cardAdded', { card: card.trim() });
    });
    if (done) {
      setCard('');
      reload();
    }
  }
  return (
    <Panel title={t('cardsTitle')}>
      <BalanceFigures balance={cust.balance} available={cust.available} />
      <ScrollTable
        caption={tp('cards')}
        rows={cust.cards}
        rowKey={(k) => k.number}
        columns={[
          { key: 'number', label: tp('card'), render: (k) => <CardLink number={k.number} /> },
          { key: 'state', label: tp('state'), render: (k) => <StateBadge group="card" state={k.state} /> },
          { key: 'may_spend', label: t('maySpend'), render: (k) => (k.may_spend ? tp('yes') : tp('no')) },
        ]}
      />
      {detail.error && <ErrorAlert error={detail.error} />}
      {detail.data && <LotsTable lots={detail.data.lots} />}
      {cust.state !== 'erased' && may('customer.edit') && (
        <form class="inline" onSubmit={submit} aria-label={t('addCard')}>
          <Field label={t('addCardNumber')} name="card" value={card} required inputMode="numeric"
            hint={t('addCardHint')} error={add.fields.card} onInput={(e) => setCard(e.currentTarget.value)} />
          <Button type="submit" kind="secondary" busy={add.busy}>{t('addCard')}</Button>
        </form>
      )}
      <ErrorAlert error={add.error} shown={['card']} />
      {add.done && <Alert kind="ok">{add.done}</Alert>}
    </Panel>
  );
}

function Family({ cust, may, onExpired }) {
  const create = useAction(onExpired);
  const f = cust.family;
  async function start() {
    const fam = await create.run(() => api('POST', '/v1/admin/families', { owner: cust.id }));
    if (fam) navigate('/families/' + fam.id);
  }
  return (
    <Panel title={t('family')}>
      {f ? (
        <p>
          <a href={'#/families/' + f.id}>{t('familyOf', { id: f.id })}</a>
          {' · '}{f.owner ? t('familyOwner') : t('familyMember')}
          {' · '}{f.may_spend ? t('familyMay') : t('familyMayNot')}
        </p>
      ) : (
        <>
          <p class="muted">{t('noFamily')}</p>
          {cust.state !== 'erased' && may('family') && (
            <Button kind="secondary" busy={create.busy} onClick={start}>{t('createFamily')}</Button>
          )}
        </>
      )}
      <ErrorAlert error={create.error} />
    </Panel>
  );
}

function History({ id, onExpired }) {
  const h = useApiLoad(() => api('GET', `/v1/admin/customers/${id}/history`), [id], onExpired);
  return (
    <Panel title={tp('historyCaption')}>
      {h.data ? <HistoryTable history={h.data.history} /> : <LoadState load={h} />}
    </Panel>
  );
}

function Prefs({ id, onExpired, editable }) {
  const p = useApiLoad(() => api('GET', `/v1/customers/${id}/notifications`), [id], onExpired);
  const [edit, setEdit] = useState(null);
  const act = useAction(onExpired);
  const channels = (list) => (list && list.length ? list.map((c) => tp('ch.' + c)).join(', ') : tp('none'));
  const d = p.data;
  const open = () =>
    setEdit({
      language: d.language || '',
      utc_offset: d.utc_offset || '',
      transactional: [...(d.transactional || [])],
      marketing: [...(d.marketing || [])],
      consent: !!d.marketing_consent.given,
      version: d.marketing_consent.version || '',
    });
  const toggle = (list, ch) => (edit[list].includes(ch) ? edit[list].filter((c) => c !== ch) : [...edit[list], ch]);
  async function save(ev) {
    ev.preventDefault();
    const body = {
      language: edit.language || null,
      utc_offset: edit.utc_offset || null,
      transactional: edit.transactional,
      marketing: edit.marketing,
      marketing_consent: { given: edit.consent, version: edit.version },
    };
    const done = await act.run(async () => {
      const r = await api('PUT', `/v1/customers/${id}/notifications`, body);
      return r.cancelled ? t('prefsSavedCancelled', { n: r.cancelled }) : t('prefsSaved');
    });
    if (done) {
      setEdit(null);
      p.reload();
    }
  }
  const f = act.fields;
  return (
    <Panel title={t('prefs')}>
      {act.done && <Alert kind="ok">{act.done}</Alert>}
      {d && edit ? (
        <form onSubmit={save} noValidate>
          <ErrorAlert error={act.error} shown={['language', 'utc_offset', 'transactional', 'marketing', 'marketing_consent.version']} />
          <div class="row">
            <Field label={t('language')} kind="select" name="pref-language" value={edit.language} error={f.language}
              onChange={(e) => setEdit({ ...edit, language: e.currentTarget.value })}>
              <option value="">{t('prefsProgramDefault')}</option>
              <option value="ru">Русский</option>
              <option value="en">English</option>
            </Field>
            <Field label={t('utcOffset')} name="pref-utc" value={edit.utc_offset} error={f.utc_offset}
              hint={t('utcHint')} onInput={(e) => setEdit({ ...edit, utc_offset: e.currentTarget.value })} />
          </div>
          {['transactional', 'marketing'].map((list) => (
            <fieldset class="checks" key={list}>
              <legend>{t(list)}</legend>
              {['email', 'sms'].map((ch) => (
                <Check key={ch} label={tp('ch.' + ch)} checked={edit[list].includes(ch)} error={ch === 'email' ? f[list] : undefined}
                  onChange={() => setEdit({ ...edit, [list]: toggle(list, ch) })} />
              ))}
            </fieldset>
          ))}
          <Check label={t('marketingConsent')} checked={edit.consent}
            onChange={(e) => setEdit({ ...edit, consent: e.currentTarget.checked })} />
          <Field label={t('consentVersion')} name="pref-version" value={edit.version} error={f['marketing_consent.version']}
            onInput={(e) => setEdit({ ...edit, version: e.currentTarget.value })} />
          <div class="actions">
            <Button type="submit" busy={act.busy}>{t('prefsSave')}</Button>
            <Button kind="secondary" type="button" onClick={() => setEdit(null)}>{t('prefsCancel')}</Button>
          </div>
        </form>
      ) : d ? (
        <>
          {!d.stored && <p class="muted">{t('prefsDefault')}</p>}
          <Facts
            items={[
              [t('language'), d.language],
              [t('utcOffset'), d.utc_offset],
              [t('transactional'), channels(d.transactional)],
              [t('marketing'), channels(d.marketing)],
              [t('marketingConsent'), d.marketing_consent.given
                ? t('consentGiven', { at: dateTime(d.marketing_consent.at), version: d.marketing_consent.version || '—' })
                : t('consentNone')],
            ]}
          />
          {editable && (
            <Button kind="secondary" onClick={open}>{t('prefsEdit')}</Button>
          )}
        </>
      ) : (
        <LoadState load={p} />
      )}
    </Panel>
  );
}

function Messages({ id, onExpired }) {
  const m = useApiLoad(() => api('GET', `/v1/admin/messages?customer=${id}&limit=20`), [id], onExpired);
  return (
    <Panel title={t('messages')}>
      {m.data ? (
        <ScrollTable
          wide
          label={t('messages')}
          rows={m.data.messages}
          rowKey={(x) => x.id}
          columns={[
            { key: 'id', label: t('msgId'), render: (x) => <a href={'#/messages/' + x.id}>{t('msgOpen', { id: x.id })}</a> },
            { key: 'created_at', label: t('msgCreated'), render: (x) => dateTime(x.created_at) },
            { key: 'kind', label: t('msgKind') },
            { key: 'channel', label: t('msgChannel'), render: (x) => tp('ch.' + x.channel) },
            { key: 'state', label: tp('state'), render: (x) => <StateBadge group="msg" state={x.state} /> },
          ]}
        />
      ) : (
        <LoadState load={m} />
      )}
    </Panel>
  );
}

/* Erasing asks for a reason and the customer's number typed again. */
function Erase({ cust, onExpired, reload }) {
  const [reason, setReason] = useState('');
  const [confirm, setConfirm] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const erase = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    if (confirm.trim() !== String(cust.id)) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    const done = await erase.run(async () => {
      await api('POST', `/v1/admin/customers/${cust.id}/erase`, { reason });
      return true;
    });
    if (done) reload();
  }
  return (
    <Panel title={t('erase')} class="danger-zone">
      <p>{t('eraseWhat')}</p>
      <form onSubmit={submit}>
        <Field label={t('eraseReason')} name="reason" value={reason} required error={erase.fields.reason}
          onInput={(e) => setReason(e.currentTarget.value)} />
        <Field label={t('eraseConfirm', { id: cust.id })} name="confirm" value={confirm} autocomplete="off"
          error={mismatch ? t('eraseMismatch', { id: cust.id }) : null}
          onInput={(e) => setConfirm(e.currentTarget.value)} />
        <Button type="submit" kind="danger" busy={erase.busy}>{t('eraseButton')}</Button>
      </form>
      <ErrorAlert error={erase.error} shown={['reason']} />
    </Panel>
  );
}

const EDITABLE = ['full_name', 'phone', 'email', 'birthday', 'receipt'];
const NULLABLE = ['email', 'birthday'];

/* The personal data form; errors are shown under their fields. */
function PersonFields({ form, set, fields }) {
  const input = (name, label, props = {}) => (
    <Field label={label} name={name} value={form[name] || ''} error={fields[name]}
      onInput={(e) => set({ ...form, [name]: e.currentTarget.value })} {...props} />
  );
  return (
    <>
      {input('full_name', t('name'), { required: true, autocomplete: 'off' })}
      <div class="row">
        {input('phone', t('phone'), { required: true, type: 'tel', autocomplete: 'off' })}
        {input('email', t('email') + ' (' + t('optional') + ')', { type: 'email', autocomplete: 'off' })}
      </div>
      <div class="row">
        {input('birthday', t('birthday') + ' (' + t('optional') + ')', { type: 'date' })}
        {input('receipt', t('receiptNo') + ' (' + t('optional') + ')', { autocomplete: 'off' })}
      </div>
    </>
  );
}

function Edit({ id, onExpired }) {
  const c = useApiLoad(() => api('GET', '/v1/admin/customers/' + id), [id], onExpired);
  const [form, setForm] = useState(null);
  const save = useAction(onExpired);
  const first = useRef(null);
  useEffect(() => {
    if (c.data && !form) {
      const f = {};
      for (const k of EDITABLE) f[k] = c.data[k] || '';
      setForm(f);
    }
  }, [c.data]);
  useEffect(() => {
    const el = document.querySelector('form.edit input');
    if (form && el && !first.current) {
      first.current = el;
      el.focus();
    }
  }, [form]);
  if (!c.data || !form) return <><h1>{tp('customerN', { id })}</h1><LoadState load={c} /></>;
  async function submit(ev) {
    ev.preventDefault();
    const body = {};
    for (const k of EDITABLE) {
      const was = c.data[k] || '';
      const now = form[k].trim();
      if (now === was) continue;
      body[k] = now === '' && NULLABLE.includes(k) ? null : now;
    }
    const done = await save.run(async () => {
      if (Object.keys(body).length) await api('PATCH', '/v1/admin/customers/' + id, body);
      return true;
    });
    if (done) navigate(`/customers/${id}?saved=1`);
  }
  return (
    <>
      <h1>{t('editTitle', { name: customerName(c.data) })}</h1>
      <form class="card edit" onSubmit={submit} noValidate>
        <ErrorAlert error={save.error} shown={EDITABLE} />
        <PersonFields form={form} set={setForm} fields={save.fields} />
        <div class="actions">
          <Button type="submit" busy={save.busy}>{tp('save')}</Button>
          <a class="btn btn-secondary" href={'#/customers/' + id}>{tp('cancel')}</a>
        </div>
      </form>
    </>
  );
}

function Register({ me, onExpired }) {
  const may = mayOf(me);
  const [form, setForm] = useState({ card: '', full_name: '', phone: '', email: '', birthday: '', receipt: '' });
  const [consent, setConsent] = useState({ given: false, text_version: '' });
  const reg = useAction(onExpired);
  const cardRef = useRef(null);
  useEffect(() => cardRef.current && cardRef.current.focus(), []);
  if (!may('customer.register')) return <><h1>{t('registerTitle')}</h1><Alert kind="info">{tp('notAllowed')}</Alert></>;
  async function submit(ev) {
    ev.preventDefault();
    const body = { card: form.card.trim(), full_name: form.full_name.trim(), phone: form.phone.trim() };
    for (const k of ['email', 'birthday', 'receipt']) if (form[k].trim()) body[k] = form[k].trim();
    body.consent = { given: consent.given };
    if (consent.text_version.trim()) body.consent.text_version = consent.text_version.trim();
    const cust = await reg.run(() => api('POST', '/v1/customers', body));
    if (cust) navigate('/customers/' + cust.id);
  }
  const f = reg.fields;
  return (
    <>
      <PageHead title={t('registerTitle')} back="#/customers" />
      <form class="card" onSubmit={submit} noValidate>
        <ErrorAlert error={reg.error} shown={['card', ...EDITABLE, 'consent', 'consent.given', 'consent.text_version']} />
        <Field label={t('cardNumber')} name="card" value={form.card} required inputMode="numeric" inputRef={cardRef}
          error={f.card} onInput={(e) => setForm({ ...form, card: e.currentTarget.value })} />
        <PersonFields form={form} set={setForm} fields={f} />
        <Check label={t('consentCheck')} checked={consent.given} error={f['consent.given'] || f.consent}
          onChange={(e) => setConsent({ ...consent, given: e.currentTarget.checked })} />
        <Field label={t('consentVersion')} name="consent_version" value={consent.text_version}
          hint={t('consentVersionHint')} error={f['consent.text_version']}
          onInput={(e) => setConsent({ ...consent, text_version: e.currentTarget.value })} />
        <Button type="submit" busy={reg.busy}>{t('registerButton')}</Button>
      </form>
    </>
  );
}
