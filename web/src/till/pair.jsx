// pair.jsx: pairing this browser with its store's terminal key, once per
// till. An admin logs in (a staff cookie session), then either pastes a key
// made before (checked against the server) or makes one for a store
// (POST /v1/admin/terminals). The key is kept in this browser's
// localStorage (state.js); the admin's session ends when the till is
// paired, so the next person logs in as the cashier.
import { useRef, useState } from 'preact/hooks';
import { api, setCsrf } from '../lib/api.js';
import { makeT } from '../lib/i18n.js';
import { Button, Field, LoginForm, useAction, useLoad } from '../lib/ui.jsx';
import { useFocus } from './keys.jsx';
import { randomTag, update } from './state.js';
import { strings } from './strings.js';

const t = makeT(strings);

/* The admin's login; a role that may not manage till keys is logged out
 * again and told so. */
function AdminLogin({ onDone }) {
  const first = useRef(null);
  useFocus(first);
  async function login(form) {
    await api('POST', '/v1/admin/login', form, { session: true });
    const me = await api('GET', '/v1/admin/me');
    if (!me.permissions.includes('terminals')) {
      await api('POST', '/v1/admin/logout').catch(() => {});
      setCsrf(null);
      throw new Error(t('pairNotAdmin', { role: me.role }));
    }
    onDone(me);
  }
  return (
    <LoginForm labels={{ login: t('login'), password: t('password'), enter: t('enter') }} inputRef={first} onLogin={login}>
      <h2>{t('pairAdmin')}</h2>
    </LoginForm>
  );
}

function PasteKey({ onPaired }) {
  const [key, setKey] = useState('');
  const action = useAction();
  function submit(ev) {
    ev.preventDefault();
    const k = key.trim();
    action.run(async () => {
      if (!/^kp_[0-9a-f]{48}$/.test(k)) throw new Error(t('keyForm'));
      /* Any answer but 401 says the key is one the server knows: an
       * unknown card is the expected answer. */
      await api('GET', '/v1/cards/-', null, { bearer: k }).catch((e) => {
        if (e.status === 401) throw new Error(t('keyRefused'));
        if (e.status === 0) throw e;
      });
      await onPaired({ key: k, store: null, terminal: null, tag: randomTag() });
    });
  }
  return (
    <form class="card" onSubmit={submit}>
      <h2>{t('pairPaste')}</h2>
      <Field label={t('terminalKey')} name="key" autocomplete="off" spellcheck={false}
        hint={t('terminalKeyHint')} error={action.error && action.error.message} value={key}
        onInput={(e) => setKey(e.currentTarget.value)} />
      <Button type="submit" busy={action.busy}>{t('pairThis')}</Button>
    </form>
  );
}

function CreateKey({ onPaired }) {
  const [store, setStore] = useState('');
  const action = useAction();
  const first = useRef(null);
  useFocus(first);
  const stores = useLoad(
    () => api('GET', '/v1/admin/terminals?limit=1000').then((r) => [...new Set(r.terminals.map((x) => x.store))]),
    [],
  );
  function submit(ev) {
    ev.preventDefault();
    action.run(async () => {
      const r = await api('POST', '/v1/admin/terminals', { store: store.trim() });
      await onPaired({ key: r.key, store: r.store, terminal: r.id, tag: String(r.id) });
    });
  }
  return (
    <form class="card" onSubmit={submit}>
      <h2>{t('pairCreate')}</h2>
      <Field label={t('store')} name="store" required list="till-stores" autocomplete="off" inputRef={first}
        hint={t('storeHint')} error={action.error && action.error.message} value={store}
        onInput={(e) => setStore(e.currentTarget.value)} />
      <datalist id="till-stores">
        {(stores.data || []).map((s) => (
          <option value={s} key={s} />
        ))}
      </datalist>
      <Button type="submit" busy={action.busy}>{t('pairCreateDo')}</Button>
    </form>
  );
}

/* The page of a till that has no key yet. */
export function Pair() {
  const [admin, setAdmin] = useState(null);
  async function paired(pairing) {
    await api('POST', '/v1/admin/logout').catch(() => {});
    setCsrf(null);
    update(() => ({ pairing, customer: null, keyRefused: false }));
  }
  return (
    <main class="wrap pair">
      <h1>{t('pairTitle')}</h1>
      <p class="muted">{t('pairWhy')}</p>
      {!admin ? (
        <div class="narrow-left">
          <AdminLogin onDone={setAdmin} />
        </div>
      ) : (
        <>
          <p>{t('pairAs', { login: admin.login })}</p>
          <div class="grid">
            <CreateKey onPaired={paired} />
            <PasteKey onPaired={paired} />
          </div>
        </>
      )}
    </main>
  );
}
