// profile.jsx: the customer's own data and choices: personal data (PATCH
// /v1/me: name, e-mail, a birthday while none is set; the phone only via
// the shop), notification preferences (PUT /v1/me/notifications: channels,
// language, marketing consent with its text version), the page's language,
// a download of everything kept about them (GET /v1/me/export) and the
// request to erase it (POST /v1/me/erase, typed confirmation).
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { date, dateTime, getLang, setLang, useLang } from '../lib/i18n.js';
import { Alert, Button, Check, Field } from '../lib/ui.jsx';
import { TEXT_VERSION, t, useAction, useFocus } from './util.js';

const CHANNELS = ['email', 'sms'];

function Personal({ profile, reload, onExpired }) {
  const [form, setForm] = useState({
    full_name: profile.full_name || '',
    email: profile.email || '',
    birthday: profile.birthday || '',
  });
  const [saved, setSaved] = useState(false);
  const act = useAction(onExpired);
  const okRef = useFocus(saved);
  async function submit(ev) {
    ev.preventDefault();
    setSaved(false);
    const body = {};
    if (form.full_name.trim() !== (profile.full_name || '')) body.full_name = form.full_name.trim();
    if (form.email.trim() !== (profile.email || '')) body.email = form.email.trim() || null;
    if (!profile.birthday && form.birthday) body.birthday = form.birthday;
    if (Object.keys(body).length === 0) {
      setSaved(true);
      return;
    }
    const r = await act.run(() => api('PATCH', '/v1/me', body));
    if (r !== undefined) {
      setSaved(true);
      reload();
    }
  }
  const f = act.err ? act.err.byField() : {};
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const loose = act.err && !['full_name', 'email', 'birthday', 'phone'].some((k) => f[k]);
  return (
    <form class="card" onSubmit={submit} aria-labelledby="pd-h" noValidate>
      <h2 id="pd-h">{t('personal_title')}</h2>
      {saved && <div ref={okRef} tabIndex={-1}><Alert kind="ok">{t('saved')}</Alert></div>}
      <Alert kind="error">{loose ? act.err.message : null}</Alert>
      <Field label={t('full_name')} name="full_name" autocomplete="name" value={form.full_name}
        error={f.full_name} onInput={set('full_name')} />
      <Field label={t('email')} name="email" type="email" autocomplete="email" value={form.email}
        error={f.email} onInput={set('email')} />
      {profile.birthday ? (
        <Field label={t('birthday')} name="birthday" value={date(profile.birthday)} readOnly
          hint={t('birthday_fixed')} />
      ) : (
        <Field label={t('birthday')} name="birthday" type="date" value={form.birthday} error={f.birthday}
          hint={t('birthday_once')} onInput={set('birthday')} />
      )}
      <Field label={t('phone')} name="phone" value={profile.phone || ''} readOnly error={f.phone}
        hint={t('phone_fixed')} />
      <Button type="submit" busy={act.busy}>{t('save')}</Button>
    </form>
  );
}

function Notifications({ prefs, reload, onExpired }) {
  const [form, setForm] = useState(() => ({
    language: prefs.language || getLang(),
    transactional: prefs.transactional || [],
    marketing: prefs.marketing || [],
    consent: !!(prefs.marketing_consent && prefs.marketing_consent.given),
  }));
  const [result, setResult] = useState(null);
  const act = useAction(onExpired);
  const toggle = (list, ch) => (e) => {
    const on = e.currentTarget.checked;
    const next = on ? [...new Set([...form[list], ch])] : form[list].filter((c) => c !== ch);
    setForm({ ...form, [list]: next });
  };
  async function submit(ev) {
    ev.preventDefault();
    setResult(null);
    const body = {
      language: form.language,
      transactional: form.transactional,
      marketing: form.consent ? form.marketing : [],
      marketing_consent: { given: form.consent, version: TEXT_VERSION },
    };
    const r = await act.run(() => api('PUT', '/v1/me/notifications', body));
    if (r !== undefined) {
      setResult(r || {});
      reload();
    }
  }
  const f = act.err ? act.err.byField() : {};
  const consent = prefs.marketing_consent || {};
  return (
    <form class="card" onSubmit={submit} aria-labelledby="nt-h" noValidate>
      <h2 id="nt-h">{t('notify_title')}</h2>
      {result && (
        <Alert kind="ok">
          {t('saved')}
          {result.cancelled ? ' ' + t('cancelled_n', { n: result.cancelled }) : ''}
        </Alert>
      )}
      <Alert kind="error">{act.err && !Object.keys(f).length ? act.err.message : null}</Alert>
      <Field kind="select" label={t('msg_language')} name="language" value={form.language} error={f.language}
        onChange={(e) => setForm({ ...form, language: e.currentTarget.value })}>
        <option value="ru">Русский</option>
        <option value="en">English</option>
      </Field>
      <fieldset class="cab-fieldset">
        <legend>{t('transactional')}</legend>
        <p class="hint">{t('transactional_hint')}</p>
        {CHANNELS.map((ch) => (
          <Check key={ch} label={t('ch_' + ch)} checked={form.transactional.includes(ch)}
            onChange={toggle('transactional', ch)} />
        ))}
        {f.transactional && <p class="error-text">{f.transactional}</p>}
      </fieldset>
      <fieldset class="cab-fieldset">
        <legend>{t('marketing')}</legend>
        <p class="cab-consent-text">{t('marketing_text')}</p>
        <Check label={t('marketing_consent')} checked={form.consent} error={f.marketing_consent || f['marketing_consent.version']}
          onChange={(e) => setForm({ ...form, consent: e.currentTarget.checked })} />
        {consent.given && consent.at && (
          <p class="hint">{t('consent_given_at', { at: dateTime(consent.at), v: consent.version || '—' })}</p>
        )}
        {CHANNELS.map((ch) => (
          <Check key={ch} label={t('ch_' + ch)} checked={form.consent && form.marketing.includes(ch)}
            disabled={!form.consent} onChange={toggle('marketing', ch)} />
        ))}
        {f.marketing && <p class="error-text">{f.marketing}</p>}
      </fieldset>
      <Button type="submit" busy={act.busy}>{t('save')}</Button>
    </form>
  );
}

function PageLanguage() {
  const lang = useLang();
  return (
    <section class="card" aria-labelledby="pl-h">
      <h2 id="pl-h">{t('page_language')}</h2>
      <Field kind="select" label={t('page_language_label')} name="page_language" value={lang}
        onChange={(e) => setLang(e.currentTarget.value)}>
        <option value="ru">Русский</option>
        <option value="en">English</option>
      </Field>
    </section>
  );
}

function MyData({ onExpired, onErased }) {
  const [typed, setTyped] = useState('');
  const [open, setOpen] = useState(false);
  const act = useAction(onExpired);
  const word = t('erase_word');
  const inputRef = useFocus(open);
  async function erase(ev) {
    ev.preventDefault();
    const r = await act.run(() => api('POST', '/v1/me/erase', { confirm: 'ERASE' }));
    if (r !== undefined) onErased();
  }
  const matches = typed.trim().toUpperCase() === word.toUpperCase();
  return (
    <section class="card" aria-labelledby="md-h">
      <h2 id="md-h">{t('mydata_title')}</h2>
      <p>{t('export_text')}</p>
      <p>
        <a class="btn btn-secondary" href="/v1/me/export" download="kopilka-my-data.json">{t('export_link')}</a>
      </p>
      <h3>{t('erase_title')}</h3>
      <p class="muted">{t('erase_text')}</p>
      {!open ? (
        <Button kind="secondary" onClick={() => setOpen(true)}>{t('erase_start')}</Button>
      ) : (
        <form onSubmit={erase} class="cab-confirm" noValidate>
          <Alert kind="error">{act.err && act.err.message}</Alert>
          <Field label={t('erase_type', { word })} name="confirm" autocomplete="off" value={typed}
            inputRef={inputRef} error={act.err && act.err.byField().confirm}
            onInput={(e) => setTyped(e.currentTarget.value)} />
          <div class="row">
            <Button kind="danger" type="submit" busy={act.busy} disabled={!matches}>{t('erase_do')}</Button>
            <Button kind="secondary" type="button" onClick={() => { setOpen(false); setTyped(''); }}>{t('cancel')}</Button>
          </div>
        </form>
      )}
    </section>
  );
}

export function Profile({ me, reload, onExpired, onErased }) {
  const profile = me.profile || {};
  return (
    <div class="cab-profile">
      <h1>{t('profile_title')}</h1>
      <div class="cab-cols">
        <div>
          <Personal profile={profile} reload={reload} onExpired={onExpired} />
          <PageLanguage />
        </div>
        <div>
          <Notifications prefs={me.notifications || {}} reload={reload} onExpired={onExpired} />
          <MyData onExpired={onExpired} onErased={onErased} />
        </div>
      </div>
    </div>
  );
}
