// transfer.jsx: giving points to another customer, found by phone or card
// (POST /v1/me/transfers), within the program's limits; a refusal is shown
// on the field it is about. Each filled-in form has its own key, so a
// retried request never gives twice.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { Alert, Button, Field } from '../lib/ui.jsx';
import { kindName, mainCard, newKey, pts, t, useAction, useFocus } from './util.js';

export function Transfer({ me, reload, onExpired }) {
  const [by, setBy] = useState('phone');
  const [to, setTo] = useState('');
  const [amount, setAmount] = useState('');
  const [key, setKey] = useState(() => newKey('cab'));
  const [done, setDone] = useState(null);
  const act = useAction(onExpired);
  const doneRef = useFocus(done);
  const card = mainCard(me);
  const limits = me.transfers || null;
  /* Anything edited is a new transfer: a new key. */
  const edit = (set) => (e) => {
    set(e.currentTarget.value);
    setKey(newKey('cab'));
  };
  async function submit(ev) {
    ev.preventDefault();
    setDone(null);
    const body = { points: Number(amount), key };
    if (by === 'phone') body.to_phone = to.trim();
    else body.to_card = to.replace(/\s+/g, '');
    /* What the page knows already is said at once, in the page's words;
     * the rest (the day's limit, an unknown phone) the server says. */
    const n = Number(amount.trim());
    let why = null;
    if (!/^\d+$/.test(amount.trim()) || n <= 0) why = t('points_whole');
    else if (limits && limits.max_points && n > limits.max_points) why = t('over_limit', { pts: pts(limits.max_points) });
    else if (card && n > card.available) why = t('over_balance', { pts: pts(card.available) });
    if (why) {
      act.setErr({ byField: () => ({ points: why }), message: why });
      return;
    }
    const r = await act.run(() => api('POST', '/v1/me/transfers', body));
    if (r) {
      setDone({ ...r, to: to.trim(), points: body.points });
      setTo('');
      setAmount('');
      setKey(newKey('cab'));
      reload();
    }
  }
  const f = act.err ? act.err.byField() : {};
  const toErr = f.to_phone || f.to_card;
  const shown = ['to_phone', 'to_card', 'points'];
  const loose = act.err && !shown.some((k) => f[k]);
  return (
    <div class="narrow cab-transfer">
      <h1>{t('transfer_title')}</h1>
      {done && (
        <div ref={doneRef} tabIndex={-1}>
          <Alert kind="ok">
            {t('transfer_done', { pts: pts(done.points), to: done.to })}
            {done.balance !== undefined ? ' ' + t('balance_now', { pts: pts(done.balance) }) : ''}
          </Alert>
        </div>
      )}
      <form class="card" onSubmit={submit} noValidate>
        <p class="muted">
          {card ? t('transfer_from', { pts: pts(card.available) }) : t('no_cards')}
        </p>
        {limits && (
          <ul class="hint cab-limits">
            {limits.max_points ? <li>{t('limit_each', { pts: pts(limits.max_points) })}</li> : null}
            {limits.daily_max_points ? <li>{t('limit_day', { pts: pts(limits.daily_max_points) })}</li> : null}
            {limits.kinds && limits.kinds.length ? (
              <li>{t('limit_kinds', { kinds: limits.kinds.map((k) => kindName(k).toLowerCase()).join(', ') })}</li>
            ) : null}
          </ul>
        )}
        <Alert kind="error">{loose ? act.err.message : null}</Alert>
        <fieldset class="cab-fieldset">
          <legend>{t('transfer_to_by')}</legend>
          <div class="cab-radios">
            {['phone', 'card'].map((v) => (
              <label key={v}>
                <input type="radio" name="by" value={v} checked={by === v}
                  onChange={() => { setBy(v); setTo(''); setKey(newKey('cab')); act.setErr(null); }} />
                {t('by_' + v)}
              </label>
            ))}
          </div>
        </fieldset>
        {by === 'phone' ? (
          <Field label={t('to_phone')} name="to_phone" type="tel" autocomplete="off" value={to} error={toErr}
            onInput={edit(setTo)} />
        ) : (
          <Field label={t('to_card')} name="to_card" inputMode="numeric" autocomplete="off" value={to} error={toErr}
            onInput={edit(setTo)} />
        )}
        <Field label={t('points_to_give')} name="points" inputMode="numeric" autocomplete="off" value={amount}
          error={f.points} onInput={edit(setAmount)} />
        <Button type="submit" busy={act.busy} disabled={!to.trim() || !amount.trim() || !card}>
          {amount.trim() && /^\d+$/.test(amount.trim()) ? t('transfer_do_n', { pts: pts(Number(amount)) }) : t('transfer_do')}
        </Button>
      </form>
    </div>
  );
}
