// register.jsx: a new customer registered at the till (POST /v1/customers
// with the cashier's session, so the registration is audited as theirs):
// the card handed over, full name, phone, e-mail, birthday, the receipt
// of the purchase, and the consent the customer signed with its text
// version (remembered in this browser once the server took it). Every
// field the server refuses is shown at its field.
import { useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, points } from '../lib/i18n.js';
import { Alert, Check, Field, navigate, useAction } from '../lib/ui.jsx';
import { KeyButton, useFocus, useKeys } from './keys.jsx';
import { emptySale, load, save, update } from './state.js';
import { strings } from './strings.js';

const t = makeT(strings);

const emptyForm = () => ({
  card: '', full_name: '', phone: '', email: '', birthday: '', receipt: '',
  consent: false, version: load('consent', ''),
});

export function Register({ onExpired }) {
  const [f, setF] = useState(emptyForm);
  const action = useAction();
  const err = action.error;
  const [done, setDone] = useState(null);
  const first = useRef(null);
  const sell = useRef(null);
  const form = useRef(null);
  useFocus(done ? sell : first, true, [done]);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });

  function submit(ev) {
    ev?.preventDefault();
    if (action.busy || done) return;
    const body = {
      card: f.card.trim(),
      full_name: f.full_name.trim(),
      phone: f.phone.trim(),
      consent: { given: f.consent, text_version: f.version.trim() },
    };
    if (f.email.trim()) body.email = f.email.trim();
    if (f.birthday) body.birthday = f.birthday;
    if (f.receipt.trim()) body.receipt = f.receipt.trim();
    action.run(async () => {
      try {
        const c = await api('POST', '/v1/customers', body);
        save('consent', body.consent.text_version);
        setDone({ customer: c, card: body.card });
      } catch (e) {
        if (e.status === 401) onExpired();
        /* The first field the server refused, once it is marked. */
        setTimeout(() => form.current?.querySelector('[aria-invalid="true"]')?.focus(), 0);
        throw e;
      }
    });
  }
  function another() {
    setF(emptyForm());
    action.setError(null);
    setDone(null);
  }
  function sellTo() {
    update(() => ({ sale: { ...emptySale(), card: done.card }, customer: null, typed: '' }));
    navigate('/');
  }
  useKeys({ F9: () => submit(), F8: () => (done ? sellTo() : another()) });

  if (done) {
    const c = done.customer;
    const granted = (c.granted || []).reduce((s, g) => s + (g.points || 0), 0);
    return (
      <main class="till-wrap">
        <div class="card narrow-left">
          <h1>{t('registerDone')}</h1>
          <Alert kind="ok">
            {t('registeredAs', { name: c.full_name, card: done.card })}
            {granted > 0 && ' ' + t('grantedN', { n: points(granted) })}
          </Alert>
          <div class="row">
            <button type="button" class="btn btn-primary" ref={sell} aria-keyshortcuts="F8" onClick={sellTo}>
              {t('sellTo')} <kbd class="key">F8</kbd>
            </button>
            <button type="button" class="btn btn-secondary" onClick={another}>
              {t('registerAnother')}
            </button>
          </div>
        </div>
      </main>
    );
  }
  const by = err && err.byField ? err.byField() : {};
  return (
    <main class="till-wrap">
      <form class="card register" onSubmit={submit} noValidate ref={form}>
        <h1>{t('registerTitle')}</h1>
        <Alert kind="error">{err && ((err.fields || []).length > 1 ? t('fixFields') : err.message)}</Alert>
        <div class="row">
          <Field label={t('cardNumber')} name="card" autocomplete="off" inputMode="numeric" inputRef={first}
            required value={f.card} error={by.card} onInput={set('card')} />
          <Field label={t('fullName')} name="full_name" autocomplete="off" required value={f.full_name}
            error={by.full_name} onInput={set('full_name')} />
        </div>
        <div class="row">
          <Field label={t('phone')} name="phone" type="tel" autocomplete="off" required value={f.phone}
            hint={t('phoneHint')} error={by.phone} onInput={set('phone')} />
          <Field label={t('email')} name="email" type="email" autocomplete="off" value={f.email}
            error={by.email} onInput={set('email')} />
        </div>
        <div class="row">
          <Field label={t('birthday')} name="birthday" type="date" value={f.birthday} error={by.birthday}
            onInput={set('birthday')} />
          <Field label={t('purchaseReceipt')} name="receipt" autocomplete="off" value={f.receipt}
            error={by.receipt} onInput={set('receipt')} />
        </div>
        <div class="row consent">
          <Check label={t('consentGiven')} checked={f.consent} error={by['consent.given'] || by.consent}
            onChange={set('consent')} />
          <Field label={t('consentVersion')} name="consent_version" autocomplete="off" value={f.version}
            hint={t('consentVersionHint')} error={by['consent.text_version']} onInput={set('version')} />
        </div>
        <div class="pay-actions">
          <KeyButton k="F9" type="submit" busy={action.busy}>
            {t('registerDo')}
          </KeyButton>
          <KeyButton k="F8" kind="secondary" type="button" onClick={another}>
            {t('clear')}
          </KeyButton>
        </div>
      </form>
    </main>
  );
}
