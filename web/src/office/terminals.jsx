// terminals.jsx: the back office's tills section (admin): the terminal
// keys with their use, adding a till (its key shown once, with a copy
// button), revoking one and rotating its key. Routes: docs/api.md
// "Terminal keys".
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, makeT } from '../lib/i18n.js';
import { Alert, Button, Field } from '../lib/ui.jsx';
import {
  ErrorAlert, LoadState, Panel, ScrollTable, Secret, StateBadge, tp, useAction, useApiLoad,
} from './people.jsx';
import { strings } from './terminals.strings.js';

const t = makeT(strings);
const PAGE = 100;

/* Every page of the list (id order), PAGE at a time as the person asks. */
function useTerminals(onExpired) {
  const [pages, setPages] = useState(1);
  const load = useApiLoad(async () => {
    let all = [];
    let after = 0;
    for (let i = 0; i < pages; i++) {
      const page = await api('GET', `/v1/admin/terminals?after=${after}&limit=${PAGE}`);
      all = all.concat(page.terminals);
      if (!page.next_after || page.terminals.length < PAGE) return { terminals: all, more: false };
      after = page.next_after;
    }
    return { terminals: all, more: true };
  }, [pages], onExpired);
  return { ...load, more: () => setPages(pages + 1) };
}

export function Terminals({ onExpired }) {
  const list = useTerminals(onExpired);
  const act = useAction(onExpired);
  const [asking, setAsking] = useState(null);
  const [secret, setSecret] = useState(null);
  async function revoke(term) {
    setAsking(null);
    const done = await act.run(async () => {
      await api('POST', `/v1/admin/terminals/${term.id}/revoke`);
      return t('revoked', { id: term.id });
    });
    if (done) {
      setSecret(null);
      list.reload();
    }
  }
  async function rotate(term) {
    const done = await act.run(() => api('POST', `/v1/admin/terminals/${term.id}/rotate`));
    if (done) {
      setSecret(done);
      act.clear();
      list.reload();
    }
  }
  return (
    <>
      <h1>{t('title')}</h1>
      <p class="muted">{t('about')}</p>
      <Add onExpired={onExpired} added={(term) => { setSecret(term); list.reload(); }} />
      {secret && <Secret label={t('keyLabel')} value={secret.key} note={t('keyOnce', { id: secret.id, store: secret.store })} />}
      <Panel title={t('list')}>
        {act.done && <Alert kind="ok">{act.done}</Alert>}
        <ErrorAlert error={act.error} />
        {asking && (
          <div class="alert alert-info" role="alertdialog" aria-labelledby="t-ask">
            <p id="t-ask">{t('confirmRevoke', { id: asking.id })}</p>
            <div class="actions">
              <Button kind="danger" onClick={() => revoke(asking)}>{t('yesRevoke')}</Button>
              <Button kind="secondary" onClick={() => setAsking(null)}>{tp('cancel')}</Button>
            </div>
          </div>
        )}
        {list.data ? (
          <>
            <ScrollTable
              wide
              label={t('list')}
              rows={list.data.terminals}
              rowKey={(x) => x.id}
              columns={[
                { key: 'id', label: t('id'), num: true },
                { key: 'store', label: t('store') },
                { key: 'state', label: tp('state'), render: (x) => <StateBadge group="term" state={x.state} /> },
                { key: 'created_at', label: t('created'), render: (x) => dateTime(x.created_at) },
                { key: 'rotated_at', label: t('rotated'), render: (x) => dateTime(x.rotated_at) },
                { key: 'last_used_at', label: t('lastUsed'), render: (x) => (x.last_used_at ? dateTime(x.last_used_at) : tp('never')) },
                { key: 'revoked_at', label: t('revokedAt'), render: (x) => dateTime(x.revoked_at) },
                {
                  key: 'do',
                  label: tp('actions'),
                  render: (x) =>
                    x.state === 'active' && (
                      <div class="actions">
                        <Button kind="secondary" busy={act.busy} aria-label={t('rotateOf', { id: x.id })} onClick={() => rotate(x)}>
                          {t('rotate')}
                        </Button>
                        <Button kind="danger" busy={act.busy} aria-label={t('revokeOf', { id: x.id })} onClick={() => setAsking(x)}>
                          {t('revoke')}
                        </Button>
                      </div>
                    ),
                },
              ]}
            />
            {list.data.more && <Button kind="secondary" onClick={list.more}>{tp('more')}</Button>}
          </>
        ) : (
          <LoadState load={list} />
        )}
      </Panel>
    </>
  );
}

function Add({ onExpired, added }) {
  const [store, setStore] = useState('');
  const act = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    const term = await act.run(() => api('POST', '/v1/admin/terminals', { store: store.trim() }));
    if (term) {
      setStore('');
      act.clear();
      added(term);
    }
  }
  return (
    <Panel title={t('add')}>
      <form class="inline" onSubmit={submit}>
        <Field label={t('store')} name="store" value={store} required hint={t('storeHint')} error={act.fields.store}
          onInput={(e) => setStore(e.currentTarget.value)} />
        <Button type="submit" busy={act.busy}>{t('add')}</Button>
      </form>
      <ErrorAlert error={act.error} shown={['store']} />
    </Panel>
  );
}
