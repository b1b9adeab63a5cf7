// adjustments.jsx: the back office's manual adjustments: add or take a
// card's points with a reason, within the role's limit (GET /v1/admin/me
// adjust_limit, shown; the server decides), under a key made once per
// adjustment so a double click or a resend never posts it twice.
// Route: POST /v1/admin/adjustments (docs/api.md "Manual adjustments").
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, makeT, points } from '../lib/i18n.js';
import { Alert, Button, Field } from '../lib/ui.jsx';
import { ErrorAlert, newKey, useAction } from './people.jsx';
import { strings } from './adjustments.strings.js';

const t = makeT(strings);
const FIELDS = ['card', 'points', 'reason', 'kind'];

export function Adjustments({ me, route, onExpired }) {
  const [form, setForm] = useState({ card: route.query.get('card') || '', points: '', reason: '', kind: '' });
  /* One key per intended adjustment: it changes only when the form does. */
  const [key, setKey] = useState(() => newKey('ADJ'));
  const [local, setLocal] = useState({});
  const act = useAction(onExpired);
  const first = useRef(null);
  useEffect(() => first.current && first.current.focus(), []);
  function edit(name, value) {
    setForm({ ...form, [name]: value });
    if (act.done) setKey(newKey('ADJ'));
  }
  async function submit(ev) {
    ev.preventDefault();
    const n = Number(form.points.trim().replace(/\s+/g, '').replace('−', '-'));
    if (!Number.isInteger(n) || n === 0) {
      setLocal({ points: t('pointsWhole') });
      return;
    }
    setLocal({});
    const body = { card: form.card.trim(), points: n, reason: form.reason.trim(), key };
    if (form.kind.trim()) body.kind = form.kind.trim();
    await act.run(() => api('POST', '/v1/admin/adjustments', body));
  }
  const fields = { ...act.fields, ...local };
  const done = act.done;
  const input = (name, props) => (
    <Field label={t(name)} name={name} value={form[name]} error={fields[name]}
      onInput={(e) => edit(name, e.currentTarget.value)} {...props} />
  );
  return (
    <>
      <h1>{t('title')}</h1>
      <p class="muted">{t('about')}</p>
      <form class="card" onSubmit={submit} noValidate>
        <Alert kind="info">{t('limit', { n: points(me.adjust_limit) })}</Alert>
        <ErrorAlert error={act.error} shown={FIELDS} />
        <div class="row">
          {input('card', { required: true, inputMode: 'numeric', inputRef: first, autocomplete: 'off' })}
          {input('points', { required: true, inputMode: 'numeric', hint: t('pointsHint'), autocomplete: 'off' })}
        </div>
        {input('reason', { required: true, hint: t('reasonHint'), autocomplete: 'off' })}
        {input('kind', { hint: t('kindHint'), autocomplete: 'off' })}
        <p class="hint">{t('key', { key })}</p>
        <Button type="submit" busy={act.busy}>{t('submit')}</Button>
      </form>
      {done && (
        <Alert kind="ok">
          {done.replayed
            ? t('replayed', { at: dateTime(done.at), balance: points(done.balance) })
            : t('done', { points: (done.points > 0 ? '+' : '') + points(done.points), card: done.card, balance: points(done.balance) })}
        </Alert>
      )}
    </>
  );
}
