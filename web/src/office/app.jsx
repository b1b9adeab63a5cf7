// app.jsx: the back office (placeholder until its pages land): a staff
// login by cookie session, and who is logged in.
import { useState } from 'preact/hooks';
import { api, ApiError } from '../lib/api.js';
import { makeT, useLang } from '../lib/i18n.js';
import { Alert, Button, Field, LangSwitch, useLoad } from '../lib/ui.jsx';

import { strings } from './strings.js';

const t = makeT(strings);

export function App() {
  useLang();
  const me = useLoad(() => api('GET', '/v1/admin/me').catch((e) => (e.status === 401 ? null : Promise.reject(e))));
  const [form, setForm] = useState({ login: '', password: '' });
  const [err, setErr] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(ev) {
    ev.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await api('POST', '/v1/admin/login', form, { session: true });
      me.reload();
    } catch (e) {
      setErr(e instanceof ApiError ? e : new ApiError(0, { message: String(e) }));
    } finally {
      setBusy(false);
    }
  }
  return (
    <>
      <header class="topbar">
        <span class="brand">Kopilka · {t('title')}</span>
        <span class="spacer" />
        <LangSwitch />
      </header>
      <main class="narrow">
        {me.data ? (
          <div class="card">
            <p>{t('hello', { login: me.data.login, role: me.data.role })}</p>
            <Button kind="secondary" onClick={() => api('POST', '/v1/admin/logout').then(me.reload)}>
              {t('out')}
            </Button>
          </div>
        ) : (
          <form class="card" onSubmit={submit}>
            <h1>{t('title')}</h1>
            <Alert kind="error">{err && err.message}</Alert>
            <Field label={t('login')} name="login" autocomplete="username" value={form.login}
              onInput={(e) => setForm({ ...form, login: e.currentTarget.value })} />
            <Field label={t('password')} name="password" type="password" autocomplete="current-password"
              value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
            <Button type="submit" busy={busy}>{t('enter')}</Button>
          </form>
        )}
      </main>
    </>
  );
}
