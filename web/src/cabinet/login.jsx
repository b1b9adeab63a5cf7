// login.jsx: getting in. The login with a one-time code (phone or e-mail →
// POST /v1/login/code → the code → POST /v1/login, a cookie session), and
// the sign-up of a card from the website form (seed 003: the phone proved
// by a code, then card number, name, e-mail, receipt number, birthday and
// consents → POST /v1/signup), which logs the new customer in.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { Alert, Button, Check, Field } from '../lib/ui.jsx';
import { TEXT_VERSION, contactBody, t, useAction, useCountdown, useFocus } from './util.js';

/* The gap the server keeps between two codes to one contact. */
const CODE_GAP_SECONDS = 60;

/*
 * Asking for a code: send(body) posts it, starts the wait before the next
 * one (the server's Retry-After on a 429), and keeps what was said.
 */
function useCode() {
  const act = useAction();
  const [wait, startWait] = useCountdown();
  const [sent, setSent] = useState(null);
  async function send(body) {
    const r = await act.run(() => api('POST', '/v1/login/code', body));
    if (r) {
      setSent(r);
      startWait(CODE_GAP_SECONDS);
    }
    return r;
  }
  return { ...act, wait, startWait, sent, setSent, send };
}

/* "Send the code again" with the time left before it may be sent. */
function Resend({ code, onResend }) {
  return code.wait > 0 ? (
    <p class="muted" aria-live="polite">{t('resend_in', { s: code.wait })}</p>
  ) : (
    <Button kind="link" type="button" busy={code.busy} onClick={onResend}>
      {t('resend')}
    </Button>
  );
}

/* The message of a code request that failed; a 429 starts the wait. */
function codeError(code) {
  const e = code.err;
  if (!e) return null;
  if (e.status === 429) return t('too_many', { s: e.retryAfter || CODE_GAP_SECONDS });
  return e.message;
}

function useRateWait(code) {
  useEffect(() => {
    if (code.err && code.err.status === 429) code.startWait(code.err.retryAfter || CODE_GAP_SECONDS);
  }, [code.err]);
}

export function Login({ notice, onDone }) {
  const [contact, setContact] = useState('');
  const [digits, setDigits] = useState('');
  const [step, setStep] = useState('contact');
  const code = useCode();
  const login = useAction();
  const codeRef = useFocus(step === 'code');
  useRateWait(code);

  async function ask(ev) {
    ev && ev.preventDefault();
    if (await code.send(contactBody(contact))) setStep('code');
  }
  async function enter(ev) {
    ev.preventDefault();
    const r = await login.run(() =>
      api('POST', '/v1/login', { ...contactBody(contact), code: digits.trim() }, { session: true }),
    );
    if (r) onDone();
  }
  const codeErr = login.err && (login.err.status === 401 ? t('code_wrong') : login.err.byField().code || login.err.message);
  return (
    <div class="narrow">
      <h1>{t('login_title')}</h1>
      {notice === 'expired' && <Alert kind="info">{t('expired')}</Alert>}
      {notice === 'erased' && <Alert kind="ok">{t('erased_done')}</Alert>}
      {step === 'contact' ? (
        <form class="card" onSubmit={ask} noValidate>
          <p class="muted">{t('login_intro')}</p>
          <Alert kind="error">{codeError(code)}</Alert>
          <Field label={t('phone_or_email')} name="contact" autocomplete="username"
            required value={contact} hint={t('phone_or_email_hint')}
            error={code.err && code.err.status !== 429 ? Object.values(code.err.byField())[0] : null}
            onInput={(e) => setContact(e.currentTarget.value)} />
          <Button type="submit" busy={code.busy} disabled={!contact.trim() || code.wait > 0}>
            {t('get_code')}
          </Button>
          <p class="cab-alt">
            {t('no_card_yet')} <a href="#/signup">{t('signup_link')}</a>
          </p>
        </form>
      ) : (
        <form class="card" onSubmit={enter} noValidate>
          <Alert kind="info">
            {t(code.sent && code.sent.channel === 'email' ? 'code_sent_email' : 'code_sent_sms', { to: contact.trim() })}
          </Alert>
          <Alert kind="error">{codeError(code)}</Alert>
          <Field label={t('code')} name="code" autocomplete="one-time-code" inputMode="numeric"
            maxLength={6} required value={digits} inputRef={codeRef} error={codeErr}
            hint={code.sent ? t('code_valid', { min: Math.max(1, Math.round(code.sent.expires_in / 60)) }) : null}
            onInput={(e) => setDigits(e.currentTarget.value)} />
          <div class="row cab-actions">
            <Button type="submit" busy={login.busy} disabled={!digits.trim()}>{t('enter')}</Button>
            <Resend code={code} onResend={() => ask()} />
            <Button kind="link" type="button" onClick={() => { setStep('contact'); setDigits(''); login.setErr(null); }}>
              {t('other_contact')}
            </Button>
          </div>
        </form>
      )}
    </div>
  );
}

const EMPTY = { card: '', full_name: '', email: '', receipt: '', birthday: '' };

/* Sign-up: seed 003's website form, the phone first (it gets the code). */
export function Signup({ onDone }) {
  const [phone, setPhone] = useState('');
  const [step, setStep] = useState('phone');
  const [form, setForm] = useState({ code: '', ...EMPTY, rules: false, marketing: false });
  const code = useCode();
  const save = useAction();
  const codeRef = useFocus(step === 'form');
  useRateWait(code);
  /* The version of the consent text the program asks for comes with the
   * code; a program that names none takes the cabinet's own. */
  const version = (code.sent && code.sent.consent_version) || TEXT_VERSION;

  async function ask(ev) {
    ev && ev.preventDefault();
    if (await code.send({ phone: phone.trim(), purpose: 'signup' })) setStep('form');
  }
  async function submit(ev) {
    ev.preventDefault();
    const body = {
      phone: phone.trim(),
      code: form.code.trim(),
      card: form.card.replace(/\s+/g, ''),
      full_name: form.full_name.trim(),
      consent: { rules: form.rules, marketing: form.marketing, version },
    };
    for (const k of ['email', 'receipt', 'birthday']) if (form[k].trim()) body[k] = form[k].trim();
    const r = await save.run(() => api('POST', '/v1/signup', body, { session: true }));
    if (r) onDone();
  }
  const f = save.err ? save.err.byField() : {};
  if (save.err && save.err.status === 401) f.code = t('code_wrong');
  const set = (k) => (e) =>
    setForm({ ...form, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  const named = new Set(Object.keys(f));
  /* A refusal that names no field of the form is shown on top. */
  const known = ['code', 'card', 'full_name', 'email', 'receipt', 'birthday', 'consent', 'consent.rules',
    'consent.marketing', 'consent.version', 'consent.text_version', 'phone'];
  const loose = save.err && (named.size === 0 || [...named].some((k) => !known.includes(k)));
  return (
    <div class="narrow">
      <h1>{t('signup_title')}</h1>
      {step === 'phone' ? (
        <form class="card" onSubmit={ask} noValidate>
          <p class="muted">{t('signup_intro')}</p>
          <Alert kind="error">{codeError(code)}</Alert>
          <Field label={t('phone')} name="phone" type="tel" autocomplete="tel" required value={phone}
            error={code.err && code.err.status !== 429 ? Object.values(code.err.byField())[0] : null}
            onInput={(e) => setPhone(e.currentTarget.value)} />
          <Button type="submit" busy={code.busy} disabled={!phone.trim() || code.wait > 0}>{t('get_code')}</Button>
          <p class="cab-alt">
            {t('have_account')} <a href="#/">{t('login_link')}</a>
          </p>
        </form>
      ) : (
        <form class="card" onSubmit={submit} noValidate>
          <Alert kind="info">{t('code_sent_signup', { to: phone.trim() })}</Alert>
          <Alert kind="error">{codeError(code) || (loose ? save.err.message : null)}</Alert>
          {f.phone && <Alert kind="error">{f.phone}</Alert>}
          <Field label={t('code')} name="code" autocomplete="one-time-code" inputMode="numeric" maxLength={6}
            required value={form.code} inputRef={codeRef} error={f.code} onInput={set('code')} />
          <div class="row cab-actions">
            <Resend code={code} onResend={() => ask()} />
            <Button kind="link" type="button" onClick={() => setStep('phone')}>{t('other_phone')}</Button>
          </div>
          <Field label={t('card_number')} name="card" inputMode="numeric" autocomplete="off" required
            value={form.card} error={f.card} hint={t('card_number_hint')} onInput={set('card')} />
          <Field label={t('full_name')} name="full_name" autocomplete="name" required value={form.full_name}
            error={f.full_name} onInput={set('full_name')} />
          <Field label={t('email_optional')} name="email" type="email" autocomplete="email" value={form.email}
            error={f.email} onInput={set('email')} />
          <Field label={t('receipt_optional')} name="receipt" autocomplete="off" value={form.receipt}
            error={f.receipt} hint={t('receipt_hint')} onInput={set('receipt')} />
          <Field label={t('birthday_optional')} name="birthday" type="date" value={form.birthday}
            error={f.birthday} hint={t('birthday_hint')} onInput={set('birthday')} />
          <Check label={t('consent_rules', { version })} checked={form.rules}
            error={f['consent.rules'] || f['consent.version'] || f['consent.text_version'] || f.consent} onChange={set('rules')} />
          <Check label={t('consent_marketing')} checked={form.marketing} error={f['consent.marketing']}
            onChange={set('marketing')} />
          <Button type="submit" busy={save.busy} disabled={!form.rules}>{t('signup_submit')}</Button>
        </form>
      )}
    </div>
  );
}
