// staff.jsx: the back office's staff section (admin): the accounts with
// their roles (and a partner's staff's partner), adding one (login, role,
// the partner from the running program's partners, password), changing a
// role, disabling and enabling. Routes: docs/api.md "Staff".
import { useState } from 'preact/hooks';
import { api, ApiError } from '../lib/api.js';
import { date, makeT } from '../lib/i18n.js';
import { Alert, Button, Field } from '../lib/ui.jsx';
import {
  ErrorAlert, LoadState, Panel, ScrollTable, StateBadge, tp, useAction, useApiLoad,
} from './people.jsx';
import { strings } from './staff.strings.js';

const t = makeT(strings);
/* The roles an account may be given; "partner" with a partner of the
 * running program (chosen when the account is added). */
export const ROLES = ['cashier', 'call_centre', 'manager', 'marketer', 'admin', 'auditor', 'partner'];
const LIST_ROLES = ROLES.filter((r) => r !== 'partner');

/* The running program's partners ([] when none runs or it has none). */
async function runningPartners() {
  const versions = await api('GET', '/v1/admin/programs?limit=1');
  if (!versions.running) return [];
  const v = await api('GET', '/v1/admin/programs/' + versions.running);
  return (v.program && v.program.partners) || [];
}

export function Staff({ me, onExpired }) {
  const list = useApiLoad(() => api('GET', '/v1/admin/staff'), [], onExpired);
  const act = useAction(onExpired);
  const [roles, setRoles] = useState({});
  async function change(s, body, message) {
    const done = await act.run(async () => {
      await api('PATCH', '/v1/admin/staff/' + s.id, body);
      return message;
    });
    if (done) list.reload();
  }
  return (
    <>
      <h1>{t('title')}</h1>
      <Panel title={t('list')}>
        <p class="muted">{t('sessionsNote')}</p>
        {act.done && <Alert kind="ok">{act.done}</Alert>}
        <ErrorAlert error={act.error} />
        {list.data ? (
          <ScrollTable
            wide
            label={t('list')}
            rows={list.data.staff}
            rowKey={(s) => s.id}
            columns={[
              { key: 'login', label: t('login'), render: (s) => (s.login === me.login ? `${s.login} ${t('you')}` : s.login) },
              {
                key: 'role',
                label: t('role'),
                render: (s) => (
                  <div class="actions">
                    <label class="sr-only" for={'role-' + s.id}>{t('roleOf', { login: s.login })}</label>
                    <select id={'role-' + s.id} value={roles[s.id] || s.role}
                      onChange={(e) => setRoles({ ...roles, [s.id]: e.currentTarget.value })}>
                      {(LIST_ROLES.includes(s.role) ? LIST_ROLES : [s.role, ...LIST_ROLES]).map((r) => (
                        <option value={r} key={r}>{tp('role.' + r)}</option>
                      ))}
                    </select>
                    {roles[s.id] && roles[s.id] !== s.role && (
                      <Button kind="secondary" busy={act.busy}
                        onClick={() => change(s, { role: roles[s.id] }, t('roleChanged', { login: s.login, role: tp('role.' + roles[s.id]) }))}>
                        {t('applyRole')}
                      </Button>
                    )}
                  </div>
                ),
              },
              { key: 'partner', label: t('partner'), render: (s) => s.partner || '—' },
              { key: 'active', label: t('state'), render: (s) => <StateBadge group="staff" state={s.active ? 'active' : 'disabled'} /> },
              { key: 'created_at', label: t('created'), render: (s) => date(s.created_at) },
              {
                key: 'do',
                label: tp('actions'),
                render: (s) => (
                  <Button kind={s.active ? 'danger' : 'secondary'} busy={act.busy}
                    aria-label={`${s.active ? t('disable') : t('enable')}: ${s.login}`}
                    onClick={() => change(s, { active: !s.active }, t(s.active ? 'disabled' : 'enabled', { login: s.login }))}>
                    {s.active ? t('disable') : t('enable')}
                  </Button>
                ),
              },
            ]}
          />
        ) : (
          <LoadState load={list} />
        )}
      </Panel>
      <Add onExpired={onExpired} added={list.reload} />
      {list.data && <Password staff={list.data.staff} onExpired={onExpired} />}
    </>
  );
}

/* A new password for an account (PATCH .../staff/{id} {"password"}): its
 * sessions end, as with every change. */
function Password({ staff, onExpired }) {
  const [who, setWho] = useState('');
  const [password, setPassword] = useState('');
  const act = useAction(onExpired);
  async function submit(ev) {
    ev.preventDefault();
    const s = staff.find((x) => String(x.id) === who);
    const done = await act.run(async () => {
      if (!s) throw new ApiError(400, { message: t('pickOne'), field: 'staff' });
      await api('PATCH', '/v1/admin/staff/' + s.id, { password });
      return t('passwordSet', { login: s.login });
    });
    if (done) setPassword('');
  }
  return (
    <Panel title={t('newPassword')}>
      <form onSubmit={submit} noValidate>
        <ErrorAlert error={act.error} shown={['password', 'staff']} />
        <div class="row">
          <Field label={t('account')} kind="select" name="pw-staff" value={who} error={act.fields.staff}
            onChange={(e) => setWho(e.currentTarget.value)}>
            <option value="">{t('pickOne')}</option>
            {staff.map((s) => (
              <option value={String(s.id)} key={s.id}>{s.login}</option>
            ))}
          </Field>
          <Field label={t('newPasswordField')} name="pw-new" type="password" autocomplete="new-password" value={password}
            error={act.fields.password} hint={t('passwordHint')} onInput={(e) => setPassword(e.currentTarget.value)} />
        </div>
        <Button type="submit" busy={act.busy}>{t('setPassword')}</Button>
      </form>
      {act.done && <Alert kind="ok">{act.done}</Alert>}
    </Panel>
  );
}

function Add({ onExpired, added }) {
  const empty = { login: '', role: 'cashier', partner: '', password: '' };
  const [form, setForm] = useState(empty);
  const act = useAction(onExpired);
  /* Read again whenever the partner role is picked: a version loaded since
   * the page opened may have other partners. */
  const partnerRole = form.role === 'partner';
  const partners = useApiLoad(() => (partnerRole ? runningPartners() : Promise.resolve([])), [partnerRole], onExpired);
  async function submit(ev) {
    ev.preventDefault();
    const done = await act.run(async () => {
      const { partner, ...body } = form;
      if (form.role === 'partner') body.partner = partner;
      const s = await api('POST', '/v1/admin/staff', body);
      return t('added', { login: s.login });
    });
    if (done) {
      setForm(empty);
      added();
    }
  }
  const input = (name, props) => (
    <Field label={t(name)} name={'new-' + name} value={form[name]} error={act.fields[name]}
      onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })} {...props} />
  );
  return (
    <Panel title={t('add')}>
      <form onSubmit={submit} noValidate>
        <ErrorAlert error={act.error} shown={['login', 'role', 'partner', 'password']} />
        <div class="row">
          {input('login', { required: true, autocomplete: 'off' })}
          <Field label={t('role')} kind="select" name="new-role" value={form.role} error={act.fields.role}
            onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}>
            {ROLES.map((r) => (
              <option value={r} key={r}>{tp('role.' + r)}</option>
            ))}
          </Field>
          {form.role === 'partner' && (
            <Field label={t('partner')} kind="select" name="new-partner" value={form.partner} error={act.fields.partner}
              hint={partners.data && partners.data.length === 0 ? t('noPartners') : t('partnerHint')}
              onChange={(e) => setForm({ ...form, partner: e.currentTarget.value })}>
              <option value="">{t('pickPartner')}</option>
              {(partners.data || []).map((p) => (
                <option value={p.code} key={p.code}>{p.name ? `${p.name} (${p.code})` : p.code}</option>
              ))}
            </Field>
          )}
          {input('password', { required: true, type: 'password', autocomplete: 'new-password', hint: t('passwordHint') })}
        </div>
        <Button type="submit" busy={act.busy}>{t('add')}</Button>
      </form>
      {act.done && <Alert kind="ok">{act.done}</Alert>}
    </Panel>
  );
}
