// family.jsx: the family account from the customer's side (GET
// /v1/me/family and its invitations): create one, invite by phone (the
// owner), accept or decline an invitation, say who may spend from the
// shared pot, remove a member (the owner) or leave, and the pot's history.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { date, dateTime, points } from '../lib/i18n.js';
import { Alert, Button, Field, Table, useLoad } from '../lib/ui.jsx';
import { opName, t, unit, useAction, useFocus } from './util.js';

/* GET that answers null for a 404 (no family yet). */
const orNull = (p) => p.catch((e) => (e.status === 404 ? null : Promise.reject(e)));

function memberName(m, me) {
  if (m.customer === me.customer) return t('you');
  return m.name || t('member_n', { id: m.customer });
}

function Invitations({ list, onAnswered, onExpired }) {
  const act = useAction(onExpired);
  const pending = list.filter((i) => i.state === 'pending');
  if (pending.length === 0) return null;
  async function answer(inv, verb) {
    const r = await act.run(() => api('POST', `/v1/me/family/invitations/${inv.id}/${verb}`));
    if (r !== undefined) onAnswered(verb);
  }
  return (
    <section class="card" aria-labelledby="inv-h">
      <h2 id="inv-h">{t('invitations_title')}</h2>
      <Alert kind="error">{act.err && act.err.message}</Alert>
      <ul class="cab-list cab-invites">
        {pending.map((inv) => (
          <li key={inv.id}>
            <div>
              <strong>{inv.inviter_name ? t('invited_by', { name: inv.inviter_name }) : t('invited')}</strong>
              <div class="hint">{t('invite_expires', { at: date(inv.expires_at) })}</div>
              <div class="hint">{t('join_note')}</div>
            </div>
            <div class="row">
              <Button busy={act.busy} onClick={() => answer(inv, 'accept')}>{t('accept')}</Button>
              <Button kind="secondary" busy={act.busy} onClick={() => answer(inv, 'decline')}>{t('decline')}</Button>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Invite({ sent, onSent, onExpired }) {
  const [phone, setPhone] = useState('');
  const [done, setDone] = useState(false);
  const act = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    setDone(false);
    const r = await act.run(() => api('POST', '/v1/me/family/invitations', { phone: phone.trim() }));
    if (r !== undefined) {
      setDone(true);
      setPhone('');
      onSent();
    }
  }
  const f = act.err ? act.err.byField() : {};
  const pending = sent.filter((i) => i.state === 'pending');
  return (
    <section class="card" aria-labelledby="invite-h">
      <h2 id="invite-h">{t('invite_title')}</h2>
      <form onSubmit={submit} noValidate>
        <p class="muted">{t('invite_text')}</p>
        {done && <Alert kind="ok">{t('invite_sent')}</Alert>}
        <Alert kind="error">{act.err && !f.phone ? act.err.message : null}</Alert>
        <Field label={t('invite_phone')} name="invite_phone" type="tel" autocomplete="off" value={phone}
          error={f.phone} onInput={(e) => setPhone(e.currentTarget.value)} />
        <Button type="submit" busy={act.busy} disabled={!phone.trim()}>{t('invite_do')}</Button>
      </form>
      {pending.length > 0 && (
        <>
          <h3>{t('invites_waiting')}</h3>
          <ul class="cab-list">
            {pending.map((i) => (
              <li key={i.id}>
                <span>{i.phone}</span>
                <span class="hint">{t('invite_expires', { at: date(i.expires_at) })}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function Members({ family, me, reload, onLeft, onExpired }) {
  const [asking, setAsking] = useState(null);
  const act = useAction(onExpired);
  const iOwn = family.owner === me.customer;
  const confirmRef = useFocus(asking);
  async function setSpend(m, on) {
    const r = await act.run(() => api('PATCH', `/v1/me/family/members/${m.customer}`, { may_spend: on }));
    if (r !== undefined) reload();
  }
  async function remove(m) {
    const r = await act.run(() => api('POST', `/v1/me/family/members/${m.customer}/remove`));
    if (r === undefined) return;
    setAsking(null);
    if (m.customer === me.customer) onLeft();
    else reload();
  }
  const alone = family.members.length === 1;
  return (
    <section class="card" aria-labelledby="mem-h">
      <h2 id="mem-h">{t('members_title')}</h2>
      <Alert kind="error">{act.err && act.err.message}</Alert>
      <ul class="cab-members">
        {family.members.map((m) => {
          const self = m.customer === me.customer;
          const mayRemove = (iOwn && !m.owner) || (self && (!m.owner || alone));
          return (
            <li key={m.customer}>
              <div class="cab-member-head">
                <strong>{memberName(m, me)}</strong>
                {m.owner && <span class="badge">{t('owner')}</span>}
                <span class={'badge ' + (m.may_spend || m.owner ? 'badge-ok' : '')}>
                  {m.may_spend || m.owner ? t('may_spend') : t('may_not_spend')}
                </span>
              </div>
              {m.joined_at && <div class="hint">{t('joined_at', { at: date(m.joined_at) })}</div>}
              <div class="row cab-actions">
                {iOwn && !m.owner && (
                  <Button kind="secondary" busy={act.busy} onClick={() => setSpend(m, !m.may_spend)}>
                    {m.may_spend ? t('forbid_spend') : t('allow_spend')}
                    <span class="sr-only"> ({memberName(m, me)})</span>
                  </Button>
                )}
                {mayRemove && asking !== m.customer && (
                  <Button kind="secondary" onClick={() => setAsking(m.customer)}>
                    {self ? (m.owner ? t('close_family') : t('leave')) : t('remove')}
                    {!self && <span class="sr-only"> ({memberName(m, me)})</span>}
                  </Button>
                )}
              </div>
              {asking === m.customer && (
                <div class="cab-confirm" role="group" aria-label={self ? t('leave') : t('remove') + ' (' + memberName(m, me) + ')'}>
                  <p>{self ? (m.owner ? t('close_confirm') : t('leave_confirm')) : t('remove_confirm', { name: memberName(m, me) })}</p>
                  <div class="row">
                    <Button kind="danger" busy={act.busy} onClick={() => remove(m)}>{t('yes')}</Button>
                    <button type="button" class="btn btn-secondary" ref={confirmRef} onClick={() => setAsking(null)}>
                      {t('cancel')}
                    </button>
                  </div>
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

export function Family({ me, reload: reloadMe, onExpired }) {
  const [note, setNote] = useState(null);
  const family = useLoad(() => orNull(api('GET', '/v1/me/family')), []);
  const invites = useLoad(() => api('GET', '/v1/me/family/invitations'), []);
  const create = useAction(onExpired);
  useEffect(() => {
    if ((family.error && family.error.status === 401) || (invites.error && invites.error.status === 401)) onExpired();
  }, [family.error, invites.error]);
  const reloadAll = () => {
    family.reload();
    invites.reload();
    reloadMe();
  };
  async function make() {
    const r = await create.run(() => api('POST', '/v1/me/family'));
    if (r !== undefined) {
      setNote('created');
      reloadAll();
    }
  }
  const f = family.data;
  const inv = invites.data || { received: [], sent: [] };
  const iOwn = f && f.owner === me.customer;
  const byId = new Map(((f && f.members) || []).map((m) => [m.customer, m]));
  return (
    <div class="cab-family">
      <h1>{t('family_title')}</h1>
      {note && <Alert kind="ok">{t('family_' + note)}</Alert>}
      <Alert kind="error">{(family.error && family.error.message) || (invites.error && invites.error.message)}</Alert>
      {family.loading && !f && <p class="muted">{t('loading')}</p>}
      <Invitations list={inv.received || []} onExpired={onExpired}
        onAnswered={(verb) => { setNote(verb === 'accept' ? 'joined' : 'declined'); reloadAll(); }} />
      {!family.loading && !f && (
        <section class="card">
          <h2>{t('no_family')}</h2>
          <p>{t('family_about')}</p>
          <Alert kind="error">{create.err && create.err.message}</Alert>
          <Button busy={create.busy} onClick={make}>{t('family_create')}</Button>
        </section>
      )}
      {f && (
        <div class="cab-cols">
          <div>
            <section class="card" aria-labelledby="pot-h">
              <h2 id="pot-h" class="figure-label">{t('family_pot')}</h2>
              <p class="cab-big">{points(f.available !== undefined ? f.available : f.balance)} <span class="cab-unit">{unit(f.available !== undefined ? f.available : f.balance)}</span></p>
              <p class="muted">{iOwn ? t('family_you_own') : t('family_you_member')}</p>
            </section>
            <Members family={f} me={me} reload={reloadAll} onExpired={onExpired}
              onLeft={() => { setNote('left'); reloadAll(); }} />
            {iOwn && <Invite sent={inv.sent || []} onSent={invites.reload} onExpired={onExpired} />}
          </div>
          <div>
            <h2>{t('family_history')}</h2>
            <Table
              rows={f.history || []}
              empty={t('history_empty')}
              columns={[
                { key: 'at', label: t('when'), render: (h) => dateTime(h.at) },
                { key: 'type', label: t('what'), render: (h) => opName(h.type) },
                { key: 'customer', label: t('who'), render: (h) => (h.customer ? memberName(byId.get(h.customer) || { customer: h.customer }, me) : '—') },
                { key: 'points', label: t('points_col'), num: true, render: (h) => points(h.points) },
              ]}
            />
          </div>
        </div>
      )}
    </div>
  );
}
