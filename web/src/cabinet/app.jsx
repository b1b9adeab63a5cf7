// app.jsx: the customer cabinet's shell: who is logged in (GET /v1/me with
// the kp_customer cookie), the login and sign-up when nobody is, the menu
// and the hash route that picks a view. Each view is its own file.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, setCsrf } from '../lib/api.js';
import { useLang } from '../lib/i18n.js';
import { Alert, Button, LangSwitch, useLoad, useRoute } from '../lib/ui.jsx';
import { t } from './util.js';
import { Login, Signup } from './login.jsx';
import { Home, ShowCard } from './home.jsx';
import { History } from './history.jsx';
import { Family } from './family.jsx';
import { Transfer } from './transfer.jsx';
import { Catalog } from './catalog.jsx';
import { Profile } from './profile.jsx';
import { MyDraws, PublicDraw } from './draws.jsx';

/* The menu: route, words key, view. */
const VIEWS = [
  ['/', 'nav_home', Home],
  ['/history', 'nav_history', History],
  ['/family', 'nav_family', Family],
  ['/transfer', 'nav_transfer', Transfer],
  ['/catalog', 'nav_catalog', Catalog],
  ['/profile', 'nav_profile', Profile],
  ['/draws', 'nav_draws', MyDraws],
];

export function App() {
  useLang();
  const route = useRoute();
  const [notice, setNotice] = useState(null);
  const me = useLoad(
    () => api('GET', '/v1/me').catch((e) => (e.status === 401 ? null : Promise.reject(e))),
    [],
  );
  /* The session ended (a 401 from any view), or the person logged out or
   * was erased: back to the login, saying why. */
  const ended = (why) => {
    setCsrf(null);
    setNotice(why);
    me.reload();
  };
  const onExpired = () => ended('expired');
  const logout = () =>
    api('POST', '/v1/logout')
      .catch(() => null)
      .then(() => {
        ended(null);
        location.hash = '#/';
      });

  /* Moving between views puts the focus on the new view's heading. */
  const mainRef = useRef(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const h1 = mainRef.current && mainRef.current.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus();
    }
  }, [route.path, !!me.data]);

  const show = route.path.match(/^\/show\/([^/]+)$/);
  if (me.data && show)
    return <ShowCard me={me.data} number={decodeURIComponent(show[1])} />;

  /* A prize draw's public page: anyone, logged in or not. */
  const draw = route.path.match(/^\/draw\/(\d+)$/);
  if (draw)
    return (
      <>
        <header class="topbar">
          <a class="brand" href="#/">{t('brand')}</a>
          <span class="spacer" />
          <LangSwitch />
        </header>
        <main class="cab" ref={mainRef}>
          <PublicDraw id={draw[1]} />
        </main>
      </>
    );

  const top = '/' + route.path.split('/')[1];
  const current = VIEWS.find((v) => v[0] === top) || VIEWS[0];
  const View = current[2];
  return (
    <>
      <header class="topbar">
        <a class="brand" href="#/">{t('brand')}</a>
        <span class="spacer" />
        <LangSwitch />
        {me.data && (
          <Button kind="secondary" class="btn btn-secondary btn-small" onClick={logout}>
            {t('logout')}
          </Button>
        )}
      </header>
      {me.data && (
        <nav class="cab-nav" aria-label={t('nav')}>
          {VIEWS.map(([path, key]) => (
            <a href={'#' + path} aria-current={path === current[0] ? 'page' : undefined} key={path}>
              {t(key)}
            </a>
          ))}
        </nav>
      )}
      <main class="cab" ref={mainRef}>
        {me.loading && !me.data ? (
          <p class="muted">{t('loading')}</p>
        ) : me.error ? (
          <>
            <h1>{t('brand')}</h1>
            <Alert kind="error">{t('load_failed', { why: me.error.message })}</Alert>
            <Button onClick={me.reload}>{t('retry')}</Button>
          </>
        ) : !me.data ? (
          route.path === '/signup' ? (
            <Signup onDone={() => { setNotice(null); location.hash = '#/'; me.reload(); }} />
          ) : (
            <Login notice={notice} onDone={() => { setNotice(null); me.reload(); }} />
          )
        ) : (
          <View me={me.data} reload={me.reload} route={route} onExpired={onExpired}
            onErased={() => { ended('erased'); location.hash = '#/'; }} />
        )}
      </main>
    </>
  );
}
