// audit.jsx: the back office's audit log (#/audit): filters (actor, action
// prefix, target, from, to) kept in the hash route so a filtered view can
// be linked to, entries newest first a page at a time (GET /v1/admin/audit
// ?order=desc&before=SEQ), each with its detail and, folded, its place in
// the hash chain.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, useLang, dateTime } from '../lib/i18n.js';
import { Alert, Button, Field, Table, navigate, useLoad } from '../lib/ui.jsx';
import { expiring, localToRfc3339 } from '../lib/action.js';
import '../lib/data.css';
import { strings } from './audit.strings.js';

const t = makeT(strings);
const PAGE = 50;
const FILTERS = ['actor', 'action', 'target', 'from', 'to'];

/* An RFC 3339 time as a datetime-local input's value (the browser's zone). */
function toLocal(iso) {
  const d = new Date(iso || '');
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function Chain({ e }) {
  return (
    <details class="hash-chain">
      <summary>{t('chain')}</summary>
      <dl>
        <dt>{t('prevHash')}</dt>
        <dd>{e.prev_hash}</dd>
        <dt>{t('hash')}</dt>
        <dd>{e.hash}</dd>
      </dl>
    </details>
  );
}

export function Audit({ route, onExpired }) {
  useLang();
  const q = route.query;
  const applied = Object.fromEntries(FILTERS.map((k) => [k, q.get(k) || '']));
  const appliedKey = FILTERS.map((k) => applied[k]).join('|');
  const [form, setForm] = useState({ ...applied, from: toLocal(applied.from), to: toLocal(applied.to) });
  /* The `before` of each page shown so far (0: the newest page). */
  const [pages, setPages] = useState({ key: appliedKey, cursors: [0] });
  const cursors = pages.key === appliedKey ? pages.cursors : [0];
  const before = cursors[cursors.length - 1];
  const list = useLoad(
    expiring(onExpired, () => {
      const p = new URLSearchParams({ order: 'desc', limit: String(PAGE) });
      for (const k of FILTERS) if (applied[k]) p.set(k, applied[k]);
      if (before) p.set('before', String(before));
      return api('GET', '/v1/admin/audit?' + p.toString());
    }),
    [appliedKey, before],
  );
  const errs = list.error ? list.error.byField() : {};
  const entries = (list.data && list.data.entries) || [];
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });

  function find(ev) {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const k of ['actor', 'action', 'target']) if (form[k].trim()) p.set(k, form[k].trim());
    for (const k of ['from', 'to']) {
      const v = localToRfc3339(form[k]);
      if (v) p.set(k, v);
    }
    setPages({ key: '', cursors: [0] });
    navigate('/audit' + (p.toString() ? '?' + p.toString() : ''));
  }
  function clear() {
    setForm({ actor: '', action: '', target: '', from: '', to: '' });
    navigate('/audit');
  }
  return (
    <>
      <h1>{t('title')}</h1>
      <form class="card" aria-label={t('filters')} onSubmit={find}>
        <div class="row row-top">
          <Field label={t('actor')} name="actor" value={form.actor} hint={t('actorHint')} error={errs.actor} onInput={set('actor')} />
          <Field label={t('action')} name="action" value={form.action} hint={t('actionHint')} error={errs.action} onInput={set('action')} />
          <Field label={t('target')} name="target" value={form.target} hint={t('targetHint')} error={errs.target} onInput={set('target')} />
        </div>
        <div class="row">
          <Field label={t('from')} name="from" type="datetime-local" value={form.from} error={errs.from} onInput={set('from')} />
          <Field label={t('to')} name="to" type="datetime-local" value={form.to} error={errs.to} onInput={set('to')} />
          <div class="actions field-actions">
            <Button type="submit" busy={list.loading}>{t('find')}</Button>
            <Button type="button" kind="secondary" onClick={clear}>{t('clear')}</Button>
          </div>
        </div>
      </form>
      <Alert kind="error">{list.error && list.error.message}</Alert>
      {list.loading && !list.data ? (
        <p class="muted">{t('loading')}</p>
      ) : (
        <Table
          caption={t('caption')}
          rows={entries}
          rowKey={(e) => e.seq}
          empty={t('none')}
          columns={[
            { key: 'seq', label: t('seq'), num: true },
            { key: 'at', label: t('at'), render: (e) => dateTime(e.at) },
            { key: 'actor', label: t('who'),
              render: (e) => (
                <>
                  <code>{e.actor}</code>
                  {e.role && <div class="hint">{t('role', { role: e.role })}</div>}
                </>
              ) },
            { key: 'action', label: t('what'), render: (e) => <code>{e.action}</code> },
            { key: 'target', label: t('on'), render: (e) => <code>{e.target || '—'}</code> },
            { key: 'detail', label: t('detail'),
              render: (e) => (
                <>
                  <div class="mono">{e.detail || '—'}</div>
                  <Chain e={e} />
                </>
              ) },
          ]}
        />
      )}
      <nav class="actions" aria-label={t('page', { n: cursors.length })}>
        <Button kind="secondary" disabled={cursors.length === 1}
          onClick={() => setPages({ key: appliedKey, cursors: cursors.slice(0, -1) })}>
          {t('newer')}
        </Button>
        <span class="muted">{t('page', { n: cursors.length })}</span>
        <Button kind="secondary" disabled={entries.length < PAGE}
          onClick={() => setPages({ key: appliedKey, cursors: [...cursors, entries[entries.length - 1].seq] })}>
          {t('older')}
        </Button>
      </nav>
    </>
  );
}
