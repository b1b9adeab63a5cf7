// app.jsx: the cashier page at /till. A browser not paired with a terminal
// key shows the pairing (pair.jsx); a paired one asks for the cashier's
// login (login.jsx), then shows the sale (sale.jsx), the return
// (returns.jsx) and the new customer's registration (register.jsx), each
// on its hash route and its Alt key. The till is keyboard-first: see
// keys.jsx; docs/pages.md lists the keys.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, setCsrf } from '../lib/api.js';
import { makeT, useLang } from '../lib/i18n.js';
import { Alert, LangSwitch, navigate, useLoad, useRoute } from '../lib/ui.jsx';
import { KeyButton, Kbd, useKeys } from './keys.jsx';
import { Login, Unpair } from './login.jsx';
import { Pair } from './pair.jsx';
import { Register } from './register.jsx';
import { Returns } from './returns.jsx';
import { Sale } from './sale.jsx';
import { Gifts } from './gifts.jsx';
import { resume } from './sender.js';
import { useTill } from './state.js';
import { strings } from './strings.js';

const t = makeT(strings);

const VIEWS = [
  ['/', 'sale', 'Alt+S', Sale],
  ['/return', 'return', 'Alt+R', Returns],
  ['/register', 'register', 'Alt+N', Register],
  ['/gifts', 'gifts', 'Alt+G', Gifts],
];

function Shell({ me, onLock, onExpired }) {
  const route = useRoute();
  const till = useTill();
  const current = VIEWS.find((v) => v[0] === route.path) || VIEWS[0];
  const View = current[3];
  const keys = { 'Alt+L': onLock };
  for (const [path, , key] of VIEWS) keys[key] = () => navigate(path);
  useKeys(keys);
  useEffect(resume, []);
  return (
    <>
      <nav class="tabs till-tabs" aria-label={t('nav')}>
        {VIEWS.map(([path, word, key]) => (
          <a href={'#' + path} aria-current={path === current[0] ? 'page' : undefined}
            aria-keyshortcuts={key} key={path}>
            {t(word)} <Kbd k={key} />
          </a>
        ))}
      </nav>
      {till.keyRefused && (
        <div class="till-wrap">
          <Alert kind="error">{t('keyRevoked')}</Alert>
          <Unpair />
        </div>
      )}
      <View me={me} onExpired={onExpired} />
    </>
  );
}

export function App() {
  useLang();
  const till = useTill();
  const [expired, setExpired] = useState(false);
  const me = useLoad(
    () => api('GET', '/v1/admin/me').catch((e) => (e.status === 401 ? null : Promise.reject(e))),
    [],
  );
  const paired = !!till.pairing;
  /* Pairing ends the admin's session: whoever is logged in is asked again. */
  const pairedKey = paired ? till.pairing.key : null;
  const seenKey = useRef(pairedKey);
  useEffect(() => {
    if (seenKey.current === pairedKey) return;
    seenKey.current = pairedKey;
    me.reload();
  }, [pairedKey]);
  async function lock() {
    await api('POST', '/v1/admin/logout').catch(() => {});
    setCsrf(null);
    setExpired(false);
    me.reload();
  }
  function expire() {
    setExpired(true);
    setCsrf(null);
    me.reload();
  }
  return (
    <div class="till">
      <header class="topbar">
        <span class="brand">{t('brand')}</span>
        {paired && (
          <span class="till-id">
            {till.pairing.store ? t('storeTag', { store: till.pairing.store, tag: till.pairing.tag }) : t('tillTag', { tag: till.pairing.tag })}
          </span>
        )}
        <span class="spacer" />
        {paired && me.data && <span class="cashier">{t('cashier', { login: me.data.login })}</span>}
        <LangSwitch />
        {paired && me.data && (
          <KeyButton k="Alt+L" kind="secondary" onClick={lock}>
            {t('lock')}
          </KeyButton>
        )}
      </header>
      {!paired ? (
        <Pair />
      ) : me.loading && !me.data ? (
        <p class="wrap muted">{t('loading')}</p>
      ) : !me.data ? (
        <Login pairing={till.pairing} expired={expired} onDone={() => { setExpired(false); me.reload(); }} />
      ) : (
        <Shell me={me.data} onLock={lock} onExpired={expire} />
      )}
    </div>
  );
}
