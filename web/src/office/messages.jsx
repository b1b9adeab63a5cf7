// messages.jsx: the back office's notifications section: the outbox with
// its filters and a message's view (retry), the templates (list, edit,
// preview, back to the built-in one) and the webhook endpoints (add, edit,
// new secret shown once). Routes: docs/api.md "Notifications". Every text
// (a template, a message's HTML) is shown as text, never as HTML.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, makeT } from '../lib/i18n.js';
import { Alert, Button, Check, Field, navigate } from '../lib/ui.jsx';
import {
  CustomerLink, ErrorAlert, Facts, LoadState, PageHead, Panel, ScrollTable, Secret, StateBadge, mayOf, tp,
  useAction, useApiLoad,
} from './people.jsx';
import { strings } from './messages.strings.js';

const t = makeT(strings);
const STATES = ['pending', 'sent', 'dead', 'cancelled'];
const CHANNELS = ['email', 'sms', 'webhook'];
const FILTER_IDS = ['customer', 'endpoint', 'event'];
/* The kinds of event a webhook endpoint may subscribe to (docs/api.md). */
const KINDS = ['earned', 'burnt', 'returned', 'expiring', 'expired', 'birthday', 'granted', 'adjusted', 'welcome',
  'tier', 'transfer_in', 'transfer_out', 'card_blocked', 'card_replaced', 'login_code', 'campaign',
  'family_invite', 'order_placed', 'order_ready', 'order_cancelled'];

export function Messages({ me, route, onExpired }) {
  const parts = route.path.split('/');
  const part = parts[2] || '';
  let page;
  if (part === 'templates' && parts.length >= 6)
    page = <Template me={me} kind={parts[3]} channel={parts[4]} language={parts[5]} onExpired={onExpired} />;
  else if (part === 'templates') page = <Templates onExpired={onExpired} />;
  else if (part === 'webhooks' && /^\d+$/.test(parts[3] || '')) page = <Endpoint me={me} id={parts[3]} onExpired={onExpired} />;
  else if (part === 'webhooks') page = <Endpoints me={me} onExpired={onExpired} />;
  else if (/^\d+$/.test(part)) page = <Message me={me} id={part} onExpired={onExpired} />;
  else page = <Outbox me={me} route={route} onExpired={onExpired} />;
  const current = part === 'templates' || part === 'webhooks' ? part : '';
  return (
    <>
      <nav class="subtabs" aria-label={t('sub')}>
        {[['', 'outbox'], ['templates', 'templates'], ['webhooks', 'webhooks']].map(([p, key]) => (
          <a key={key} href={'#/messages' + (p ? '/' + p : '')} aria-current={current === p ? 'page' : undefined}>{t(key)}</a>
        ))}
      </nav>
      {page}
    </>
  );
}

/* The outbox, newest first; the filters live in the route's query. */
function Outbox({ me, route, onExpired }) {
  const may = mayOf(me);
  const q = route.query;
  const key = q.toString();
  const [form, setForm] = useState(() => Object.fromEntries(['state', 'channel', ...FILTER_IDS].map((k) => [k, q.get(k) || ''])));
  const [pages, setPages] = useState([]);
  useEffect(() => {
    setForm(Object.fromEntries(['state', 'channel', ...FILTER_IDS].map((k) => [k, q.get(k) || ''])));
    setPages([]);
  }, [key]);
  const load = useApiLoad(() => api('GET', '/v1/admin/messages?' + key + (key ? '&' : '') + 'limit=50'), [key], onExpired);
  const more = useAction(onExpired);
  async function next() {
    const last = pages.length ? pages[pages.length - 1] : load.data;
    const page = await more.run(() => api('GET', `/v1/admin/messages?${key}${key ? '&' : ''}limit=50&before=${last.next_before}`));
    if (page) setPages([...pages, page]);
  }
  function submit(ev) {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v.trim()) p.set(k, v.trim());
    navigate('/messages' + (p.toString() ? '?' + p.toString() : ''));
  }
  const fields = load.error ? load.error.byField() : {};
  const rows = load.data ? [load.data, ...pages].flatMap((p) => p.messages) : [];
  const last = pages.length ? pages[pages.length - 1] : load.data;
  const idField = (k) =>
    (k !== 'customer' || may('customer.read')) && (
      <Field key={k} label={t(k)} name={k} value={form[k]} inputMode="numeric" error={fields[k]}
        onInput={(e) => setForm({ ...form, [k]: e.currentTarget.value })} />
    );
  return (
    <>
      <h1>{t('outbox')}</h1>
      <form class="card" onSubmit={submit} aria-label={t('filters')}>
        <div class="row">
          <Field label={t('state')} kind="select" name="state" value={form.state} error={fields.state}
            onChange={(e) => setForm({ ...form, state: e.currentTarget.value })}>
            <option value="">{t('any')}</option>
            {STATES.map((s) => <option value={s} key={s}>{tp('msg.' + s)}</option>)}
          </Field>
          <Field label={t('channel')} kind="select" name="channel" value={form.channel} error={fields.channel}
            onChange={(e) => setForm({ ...form, channel: e.currentTarget.value })}>
            <option value="">{t('anyChannel')}</option>
            {CHANNELS.map((c) => <option value={c} key={c}>{tp('ch.' + c)}</option>)}
          </Field>
          {FILTER_IDS.map(idField)}
        </div>
        <div class="actions">
          <Button type="submit">{t('apply')}</Button>
          {key && <a class="btn btn-secondary" href="#/messages">{t('reset')}</a>}
        </div>
      </form>
      {load.error && !Object.keys(fields).some((f) => f in form) && <ErrorAlert error={load.error} />}
      {load.data ? (
        <>
          <ScrollTable
            wide
            label={t('outbox')}
            rows={rows}
            rowKey={(m) => m.id ?? m.key}
            columns={[
              // id null: a webhook delivery of a pending event, not written yet (docs/api.md).
              { key: 'id', label: t('id'), render: (m) => m.id == null ? '—' : <a href={'#/messages/' + m.id} aria-label={t('open', { id: m.id })}>{m.id}</a> },
              { key: 'created_at', label: t('created'), render: (m) => dateTime(m.created_at) },
              { key: 'kind', label: t('kind') },
              { key: 'channel', label: t('channel'), render: (m) => tp('ch.' + m.channel) },
              { key: 'customer', label: tp('customer'), render: (m) => <CustomerLink id={m.customer} /> },
              { key: 'state', label: t('state'), render: (m) => <StateBadge group="msg" state={m.state} /> },
              { key: 'attempts', label: t('attempts'), num: true },
              { key: 'last_error', label: t('lastError') },
            ]}
          />
          <ErrorAlert error={more.error} />
          {last && last.next_before && <Button kind="secondary" busy={more.busy} onClick={next}>{tp('more')}</Button>}
        </>
      ) : (
        !load.error && <LoadState load={load} />
      )}
    </>
  );
}

function Message({ me, id, onExpired }) {
  const may = mayOf(me);
  const m = useApiLoad(() => api('GET', '/v1/admin/messages/' + id), [id], onExpired);
  const retry = useAction(onExpired);
  if (!m.data) return <><h1>{t('messageTitle', { id })}</h1><LoadState load={m} /></>;
  const msg = m.data;
  const c = msg.content;
  const canRetry = may('notify.manage') && (msg.state === 'dead' || (msg.state === 'sent' && msg.channel === 'webhook'));
  async function again() {
    const done = await retry.run(async () => {
      await api('POST', `/v1/admin/messages/${id}/retry`);
      return t('retried');
    });
    if (done) m.reload();
  }
  return (
    <>
      <PageHead title={t('messageTitle', { id })} back="#/messages" />
      {retry.done && <Alert kind="ok">{retry.done}</Alert>}
      <ErrorAlert error={retry.error} />
      <section class="card" aria-label={t('messageTitle', { id })}>
        <Facts
          items={[
            [t('state'), <StateBadge group="msg" state={msg.state} />],
            [t('kind'), msg.kind],
            [t('channel'), tp('ch.' + msg.channel)],
            [tp('customer'), msg.customer && <CustomerLink id={msg.customer} />],
            [t('endpoint'), msg.endpoint && <a href={'#/messages/webhooks/' + msg.endpoint}>{msg.endpoint}</a>],
            [t('key'), msg.key],
            [t('eventId'), msg.event_id],
            [t('attempts'), msg.attempts],
            [t('created'), dateTime(msg.created_at)],
            [t('next'), msg.next_attempt_at && dateTime(msg.next_attempt_at)],
            [t('sent'), msg.sent_at && dateTime(msg.sent_at)],
            [t('providerId'), msg.provider_id],
            [t('lastError'), msg.last_error],
          ]}
        />
        {canRetry && (
          <div>
            <p class="hint">{t('retryWhy')}</p>
            <Button busy={retry.busy} onClick={again}>{msg.state === 'dead' ? t('retry') : t('replay')}</Button>
          </div>
        )}
      </section>
      <Panel title={t('content')}>
        {c ? (
          <>
            <Facts items={[[t('to'), c.to], [t('subject'), c.subject], [t('unsubscribe'), c.unsubscribe_url]]} />
            {[['text', c.text], ['html', c.html], ['body', c.body]].filter(([, v]) => v).map(([k, v]) => (
              <div key={k}>
                <h3>{t(k)}</h3>
                <pre class="preview">{v}</pre>
              </div>
            ))}
          </>
        ) : (
          <p class="muted">{msg.content_problem || t('noContent')}</p>
        )}
      </Panel>
    </>
  );
}

function Templates({ onExpired }) {
  const list = useApiLoad(() => api('GET', '/v1/admin/templates'), [], onExpired);
  return (
    <>
      <h1>{t('templates')}</h1>
      {list.data ? (
        <ScrollTable
          label={t('templates')}
          rows={list.data.templates}
          rowKey={(x) => `${x.kind}/${x.channel}/${x.language}`}
          columns={[
            { key: 'kind', label: t('kind'), render: (x) => <a href={`#/messages/templates/${x.kind}/${x.channel}/${x.language}`}>{x.kind}</a> },
            { key: 'channel', label: t('channel'), render: (x) => tp('ch.' + x.channel) },
            { key: 'language', label: t('language') },
            { key: 'source', label: t('source'), render: (x) => t('source.' + x.source) },
            { key: 'updated_at', label: t('updated'), render: (x) => dateTime(x.updated_at) },
          ]}
        />
      ) : (
        <LoadState load={list} />
      )}
    </>
  );
}

function Template({ me, kind, channel, language, onExpired }) {
  const may = mayOf(me);
  const path = `/v1/admin/templates/${encodeURIComponent(kind)}/${encodeURIComponent(channel)}/${encodeURIComponent(language)}`;
  const tpl = useApiLoad(() => api('GET', path), [path], onExpired);
  const [form, setForm] = useState(null);
  const act = useAction(onExpired);
  const view = useAction(onExpired);
  useEffect(() => {
    if (tpl.data) setForm({ subject: tpl.data.subject || '', text: tpl.data.text || '', html: tpl.data.html || '' });
  }, [tpl.data]);
  const title = t('templateTitle', { kind, channel: tp('ch.' + channel), language });
  if (!tpl.data || !form) return <><h1>{title}</h1><LoadState load={tpl} /></>;
  const sms = channel === 'sms';
  const manage = may('notify.manage');
  const body = () => (sms ? { text: form.text } : { subject: form.subject, text: form.text, ...(form.html ? { html: form.html } : {}) });
  async function save(ev) {
    ev.preventDefault();
    const done = await act.run(async () => {
      await api('PUT', path, body());
      return t('savedT');
    });
    if (done) tpl.reload();
  }
  async function reset() {
    const done = await act.run(async () => {
      await api('DELETE', path);
      return t('resetDone');
    });
    if (done) tpl.reload();
  }
  const fields = { ...view.fields, ...act.fields };
  const area = (name, label, rows) => (
    <Field kind="textarea" label={label} name={name} value={form[name]} rows={rows} readOnly={!manage}
      error={fields[name]} onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })} />
  );
  const shown = view.done;
  return (
    <>
      <PageHead title={title} back="#/messages/templates" />
      {act.done && <Alert kind="ok">{act.done}</Alert>}
      <form class="card" onSubmit={save}>
        <p class="muted">{t('source')}: {t('source.' + tpl.data.source)}{!manage && ' · ' + t('readOnly')}</p>
        {tpl.data.fields && <p class="hint">{t('fieldsAvail', { fields: tpl.data.fields.join(', ') })}</p>}
        <ErrorAlert error={act.error || view.error} shown={['subject', 'text', 'html']} />
        {!sms && (
          <Field label={t('subject')} name="subject" value={form.subject} readOnly={!manage} error={fields.subject}
            onInput={(e) => setForm({ ...form, subject: e.currentTarget.value })} />
        )}
        {area('text', t('text'), 8)}
        {!sms && area('html', t('html'), 8)}
        <div class="actions">
          {manage && <Button type="submit" busy={act.busy}>{t('save')}</Button>}
          <Button type="button" kind="secondary" busy={view.busy} onClick={() => view.run(() => api('POST', path + '/preview', body()))}>
            {t('preview')}
          </Button>
          {manage && tpl.data.source === 'stored' && (
            <Button type="button" kind="secondary" busy={act.busy} onClick={reset}>{t('resetBuiltin')}</Button>
          )}
        </div>
      </form>
      {shown && (
        <Panel title={t('previewTitle')}>
          {shown.subject && <p><strong>{shown.subject}</strong></p>}
          {shown.text && <pre class="preview">{shown.text}</pre>}
          {shown.html && <><h3>{t('html')}</h3><pre class="preview">{shown.html}</pre></>}
        </Panel>
      )}
    </>
  );
}

/* The endpoint form: url, description, kinds (none = every kind), active. */
function EndpointForm({ initial, submitLabel, busy, fields, onSubmit }) {
  const [form, setForm] = useState(initial);
  function submit(ev) {
    ev.preventDefault();
    onSubmit(form);
  }
  function toggle(kind, on) {
    setForm({ ...form, kinds: on ? [...form.kinds, kind] : form.kinds.filter((k) => k !== kind) });
  }
  return (
    <form onSubmit={submit}>
      <Field label={t('url')} name="url" type="url" value={form.url} required error={fields.url}
        onInput={(e) => setForm({ ...form, url: e.currentTarget.value })} />
      <Field label={t('description')} name="description" value={form.description} error={fields.description}
        onInput={(e) => setForm({ ...form, description: e.currentTarget.value })} />
      <fieldset class="checks">
        <legend>{t('kinds')} <span class="hint">({t('kindsHint')})</span></legend>
        {KINDS.map((k) => (
          <Check key={k} label={k} checked={form.kinds.includes(k)} onChange={(e) => toggle(k, e.currentTarget.checked)} />
        ))}
      </fieldset>
      {fields.kinds && <p class="error-text">{fields.kinds}</p>}
      <Check label={t('active')} checked={form.active} onChange={(e) => setForm({ ...form, active: e.currentTarget.checked })} />
      <Button type="submit" busy={busy}>{submitLabel}</Button>
    </form>
  );
}

function Endpoints({ me, onExpired }) {
  const may = mayOf(me);
  const list = useApiLoad(() => api('GET', '/v1/admin/webhooks'), [], onExpired);
  const add = useAction(onExpired);
  const [made, setMade] = useState(null);
  const [formKey, setFormKey] = useState(0);
  async function create(form) {
    const ep = await add.run(() => api('POST', '/v1/admin/webhooks', form));
    if (ep) {
      setMade(ep);
      setFormKey(formKey + 1);
      list.reload();
    }
  }
  return (
    <>
      <h1>{t('webhooks')}</h1>
      {made && <Secret label={t('secretLabel')} value={made.secret} note={t('secretOnce', { id: made.id })} />}
      <Panel title={t('endpoints')}>
        {list.data ? (
          <ScrollTable
            wide
            label={t('endpoints')}
            rows={list.data.endpoints}
            rowKey={(x) => x.id}
            columns={[
              { key: 'id', label: t('id'), render: (x) => <a href={'#/messages/webhooks/' + x.id} aria-label={t('openEndpoint', { id: x.id })}>{x.id}</a> },
              { key: 'url', label: t('url') },
              { key: 'description', label: t('description') },
              { key: 'kinds', label: t('kinds'), render: (x) => (x.every_kind ? t('every') : x.kinds.join(', ')) },
              { key: 'active', label: t('active'), render: (x) => (x.active ? t('on') : t('off')) },
            ]}
          />
        ) : (
          <LoadState load={list} />
        )}
      </Panel>
      {may('notify.manage') && (
        <Panel title={t('addEndpoint')}>
          <ErrorAlert error={add.error} shown={['url', 'description', 'kinds']} />
          <EndpointForm key={formKey} initial={{ url: '', description: '', kinds: [], active: true }}
            submitLabel={t('addEndpoint')} busy={add.busy} fields={add.fields} onSubmit={create} />
        </Panel>
      )}
    </>
  );
}

function Endpoint({ me, id, onExpired }) {
  const may = mayOf(me);
  const ep = useApiLoad(() => api('GET', '/v1/admin/webhooks/' + id), [id], onExpired);
  const save = useAction(onExpired);
  const rot = useAction(onExpired);
  if (!ep.data) return <><h1>{t('endpointTitle', { id })}</h1><LoadState load={ep} /></>;
  const e = ep.data;
  async function update(form) {
    const done = await save.run(async () => {
      await api('PATCH', '/v1/admin/webhooks/' + id, form);
      return t('savedE');
    });
    if (done) ep.reload();
  }
  return (
    <>
      <PageHead title={t('endpointTitle', { id })} back="#/messages/webhooks" />
      {save.done && <Alert kind="ok">{save.done}</Alert>}
      {rot.done && <Secret label={t('secretLabel')} value={rot.done.secret} note={t('secretOnce', { id })} />}
      <ErrorAlert error={save.error || rot.error} shown={['url', 'description', 'kinds']} />
      <section class="card" aria-label={t('endpointTitle', { id })}>
        {may('notify.manage') ? (
          <>
            <EndpointForm key={e.updated_at || 'x'} initial={{ url: e.url, description: e.description || '', kinds: e.every_kind ? [] : e.kinds, active: e.active }}
              submitLabel={t('save')} busy={save.busy} fields={save.fields} onSubmit={update} />
            <p>
              <Button kind="secondary" busy={rot.busy} onClick={() => rot.run(() => api('POST', `/v1/admin/webhooks/${id}/rotate`))}>
                {t('rotate')}
              </Button>
            </p>
          </>
        ) : (
          <Facts
            items={[
              [t('url'), e.url],
              [t('description'), e.description],
              [t('kinds'), e.every_kind ? t('every') : e.kinds.join(', ')],
              [t('active'), e.active ? t('on') : t('off')],
              [t('created'), dateTime(e.created_at)],
              [t('updated'), dateTime(e.updated_at)],
            ]}
          />
        )}
      </section>
    </>
  );
}
