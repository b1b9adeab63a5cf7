// login.jsx: the cashier's login on a paired till (a staff cookie session;
// the login is shown and printed on receipts) and "unpair", which makes
// this browser forget its terminal key.
import { useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT } from '../lib/i18n.js';
import { Alert, Button, LoginForm } from '../lib/ui.jsx';
import { useFocus } from './keys.jsx';
import { update } from './state.js';
import { strings } from './strings.js';

const t = makeT(strings);

/* "Unpair this till", asked twice: the key is gone from this browser. */
export function Unpair() {
  const [asking, setAsking] = useState(false);
  const yes = useRef(null);
  useFocus(yes, asking);
  if (!asking)
    return (
      <Button kind="link" type="button" onClick={() => setAsking(true)}>
        {t('unpair')}
      </Button>
    );
  return (
    <div class="card confirm" role="group" aria-label={t('unpair')}>
      <p>{t('unpairSure')}</p>
      <div class="row">
        <button type="button" class="btn btn-danger" ref={yes}
          onClick={() => update(() => ({ pairing: null, customer: null, keyRefused: false }))}>
          {t('unpairYes')}
        </button>
        <Button kind="secondary" type="button" onClick={() => setAsking(false)}>
          {t('cancel')}
        </Button>
      </div>
    </div>
  );
}

export function Login({ pairing, onDone, expired }) {
  const first = useRef(null);
  useFocus(first);
  const labels = { login: t('login'), password: t('password'), enter: t('enter') };
  return (
    <main class="narrow">
      <LoginForm labels={labels} inputRef={first}
        onLogin={(form) => api('POST', '/v1/admin/login', form, { session: true }).then(onDone)}>
        <h1>{t('cashierLogin')}</h1>
        <p class="muted">
          {pairing.store ? t('pairedStore', { store: pairing.store, tag: pairing.tag }) : t('pairedTag', { tag: pairing.tag })}
        </p>
        {expired && <Alert kind="info">{t('expired')}</Alert>}
      </LoginForm>
      <Unpair />
    </main>
  );
}
