// app.jsx: the back office's shell: the staff login (a cookie session),
// the sections the role may open (GET /v1/admin/me lists its permissions),
// and the hash route that picks one. Each section is its own file.
import { useState } from 'preact/hooks';
import { api, ApiError, setCsrf } from '../lib/api.js';
import { makeT, useLang } from '../lib/i18n.js';
import { Alert, Button, Field, LangSwitch, useLoad, useRoute } from '../lib/ui.jsx';
import { strings } from './strings.js';
import { Dashboard } from './dashboard.jsx';
import { Customers } from './customers.jsx';
import { Cards } from './cards.jsx';
import { Families } from './families.jsx';
import { Adjustments } from './adjustments.jsx';
import { Staff } from './staff.jsx';
import { Terminals } from './terminals.jsx';
import { Programs } from './programs.jsx';
import { Imports } from './imports.jsx';
import { Audit } from './audit.jsx';
import { Messages } from './messages.jsx';
import { Reports } from './reports.jsx';
import { Simulate } from './simulate.jsx';
import { Segments, Campaigns } from './marketing.jsx';
import { Catalog } from './catalog.jsx';
import { Draws } from './draws.jsx';
import { Settlement } from './settlement.jsx';
import { PartnerOffice } from './partner.jsx';

const t = makeT(strings);

/* Sections in the order of the menu: route, words key, permission, page. */
export const SECTIONS = [
  ['/', 'dashboard', 'report.read', Dashboard],
  ['/customers', 'customers', 'customer.read', Customers],
  ['/cards', 'cards', 'card.read', Cards],
  ['/families', 'families', 'family', Families],
  ['/adjustments', 'adjustments', 'adjust', Adjustments],
  ['/programs', 'programs', 'program.read', Programs],
  ['/reports', 'reports', 'report.read', Reports],
  ['/simulate', 'simulate', 'program.read', Simulate],
  ['/segments', 'segments', 'campaign.manage', Segments],
  ['/campaigns', 'campaigns', 'campaign.manage', Campaigns],
  ['/imports', 'imports', 'import', Imports],
  ['/messages', 'messages', 'notify.read', Messages],
  ['/catalog', 'catalog', 'catalog.manage', Catalog],
  ['/draws', 'draws', 'draw.manage', Draws],
  ['/settlement', 'settlement', 'settlement.read', Settlement],
  ['/staff', 'staff', 'staff', Staff],
  ['/terminals', 'terminals', 'terminals', Terminals],
  ['/audit', 'audit', 'audit.read', Audit],
];

function Login({ onDone, expired }) {
  const [form, setForm] = useState({ login: '', password: '' });
  const [err, setErr] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(ev) {
    ev.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await api('POST', '/v1/admin/login', form, { session: true });
      onDone();
    } catch (e) {
      setErr(e instanceof ApiError ? e : new ApiError(0, { message: String(e) }));
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="narrow">
      <form class="card" onSubmit={submit}>
        <h1>{t('title')}</h1>
        {expired && !err && <Alert kind="info">{t('expired')}</Alert>}
        <Alert kind="error">{err && err.message}</Alert>
        <Field label={t('login')} name="login" autocomplete="username" value={form.login} required
          onInput={(e) => setForm({ ...form, login: e.currentTarget.value })} />
        <Field label={t('password')} name="password" type="password" autocomplete="current-password"
          required value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
        <Button type="submit" busy={busy}>{t('enter')}</Button>
      </form>
    </main>
  );
}

export function App() {
  useLang();
  const route = useRoute();
  const [expired, setExpired] = useState(false);
  const me = useLoad(
    () => api('GET', '/v1/admin/me').catch((e) => (e.status === 401 ? null : Promise.reject(e))),
    [],
  );
  const may = (perm) => !!me.data && me.data.permissions.includes(perm);
  /* A section calls this when the API answers 401: back to the login. */
  const onExpired = () => {
    setExpired(true);
    setCsrf(null);
    me.reload();
  };
  const sections = SECTIONS.filter((s) => may(s[2]));
  const top = '/' + route.path.split('/')[1];
  /* "/" opens the first section the role may open. */
  const current =
    SECTIONS.find((s) => s[0] === top && (top !== '/' || may(s[2]))) || sections[0] || SECTIONS[0];
  const Page = current[3];
  return (
    <>
      <header class="topbar">
        <a class="brand" href="#/">Kopilka · {t('title')}</a>
        <span class="spacer" />
        {me.data && <span>{t('who', { login: me.data.login, role: me.data.role })}</span>}
        <LangSwitch />
        {me.data && (
          <Button kind="secondary" onClick={() => api('POST', '/v1/admin/logout').then(() => { setCsrf(null); me.reload(); })}>
            {t('out')}
          </Button>
        )}
      </header>
      {me.loading && !me.data ? (
        <p class="wrap muted">{t('loading')}</p>
      ) : !me.data ? (
        <Login onDone={() => { setExpired(false); me.reload(); }} expired={expired} />
      ) : me.data.partner ? (
        /* A coalition partner's staff: only its partner's pages (partner.jsx). */
        <PartnerOffice route={route} onExpired={onExpired} navLabel={t('nav')} />
      ) : (
        <div class="wrap">
          <nav class="tabs" aria-label={t('nav')}>
            {sections.map(([path, key]) => (
              <a href={'#' + path} aria-current={path === current[0] ? 'page' : undefined} key={path}>
                {t(key)}
              </a>
            ))}
          </nav>
          <main>
            {sections.length === 0 ? (
              <p>{t('nothing')}</p>
            ) : !may(current[2]) ? (
              <Alert kind="info">{t('forbidden')}</Alert>
            ) : (
              <Page me={me.data} route={route} onExpired={onExpired} />
            )}
          </main>
        </div>
      )}
    </>
  );
}
