// ui.jsx: what the three pages share: a hash router, form fields with
// their labels and errors, buttons, alerts, tables, the language switch.
// Every value is rendered as text by Preact (never as HTML), so a
// customer named <img src=x onerror=...> shows as those characters.
import { useEffect, useRef, useState } from 'preact/hooks';
import { LANGS, getLang, setLang, useLang } from './i18n.js';

/* The current hash route ("#/history?x=1" → {path: "/history", query}). */
export function useRoute() {
  const read = () => {
    const h = location.hash.replace(/^#/, '') || '/';
    const [path, q] = h.split('?');
    return { path: path || '/', query: new URLSearchParams(q || '') };
  };
  const [route, set] = useState(read);
  useEffect(() => {
    const on = () => set(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function navigate(path) {
  location.hash = '#' + path;
}

let ids = 0;
function useId(prefix) {
  const ref = useRef(null);
  if (ref.current === null) ref.current = `${prefix}-${++ids}`;
  return ref.current;
}

/*
 * A labelled input. error: the message the server (or the form) gave for
 * this field, shown under it and tied to it for screen readers. kind:
 * "input" (default), "select" (children are <option>s), "textarea".
 */
export function Field({ label, error, hint, kind = 'input', children, inputRef, ...props }) {
  const id = useId('f');
  const described = [error ? id + '-err' : null, hint ? id + '-hint' : null]
    .filter(Boolean)
    .join(' ');
  const common = {
    id,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': described || undefined,
    ref: inputRef,
    ...props,
  };
  return (
    <div class={'field' + (error ? ' field-error' : '')}>
      <label for={id}>{label}</label>
      {kind === 'select' ? (
        <select {...common}>{children}</select>
      ) : kind === 'textarea' ? (
        <textarea {...common} />
      ) : (
        <input {...common} />
      )}
      {hint && (
        <div class="hint" id={id + '-hint'}>
          {hint}
        </div>
      )}
      {error && (
        <div class="error-text" id={id + '-err'}>
          {error}
        </div>
      )}
    </div>
  );
}

/* A checkbox with its label. */
export function Check({ label, error, ...props }) {
  const id = useId('c');
  return (
    <div class={'check' + (error ? ' field-error' : '')}>
      <input type="checkbox" id={id} aria-invalid={error ? 'true' : undefined} {...props} />
      <label for={id}>{label}</label>
      {error && <div class="error-text">{error}</div>}
    </div>
  );
}

export function Button({ kind = 'primary', busy, children, ...props }) {
  return (
    <button class={'btn btn-' + kind} disabled={busy || props.disabled} aria-busy={busy ? 'true' : undefined} {...props}>
      {children}
    </button>
  );
}

/* A message: kind error (announced at once), ok or info. */
export function Alert({ kind = 'info', children }) {
  if (!children) return null;
  return (
    <div class={'alert alert-' + kind} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}

/* A table: columns [{key, label, render?, num?}], rows: objects. */
export function Table({ columns, rows, caption, empty, rowKey }) {
  return (
    <div class="table-wrap">
      <table>
        {caption && <caption>{caption}</caption>}
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" class={c.num ? 'num' : ''} key={c.key}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} class="empty">
                {empty || '—'}
              </td>
            </tr>
          ) : (
            rows.map((r, i) => (
              <tr key={rowKey ? rowKey(r) : i}>
                {columns.map((c) => (
                  <td class={c.num ? 'num' : ''} key={c.key}>
                    {c.render ? c.render(r) : r[c.key] ?? '—'}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

/* Русский / English. */
export function LangSwitch() {
  const lang = useLang();
  return (
    <div class="lang" role="group" aria-label="Language / Язык">
      {LANGS.map((l) => (
        <button
          type="button"
          class={'lang-btn' + (l === lang ? ' on' : '')}
          aria-pressed={l === lang ? 'true' : 'false'}
          lang={l}
          onClick={() => setLang(l)}
          key={l}
        >
          {l === 'ru' ? 'Русский' : 'English'}
        </button>
      ))}
    </div>
  );
}

/* Runs load() (async) now and when deps change: {data, error, loading, reload}. */
export function useLoad(load, deps = []) {
  const [state, set] = useState({ data: null, error: null, loading: true });
  const tick = useRef(0);
  const run = () => {
    const n = ++tick.current;
    set((s) => ({ ...s, loading: true }));
    load().then(
      (data) => n === tick.current && set({ data, error: null, loading: false }),
      (error) => n === tick.current && set({ data: null, error, loading: false }),
    );
  };
  useEffect(run, deps);
  return { ...state, reload: run };
}

/* The language in use, for components that format outside of t(). */
export { getLang };

/*
 * useAction() → {busy, error, run, setError}: run(fn) awaits fn() with busy
 * set, and keeps what it threw (an ApiError from api(), or any Error) as
 * error for the form to show; run resolves to fn's result, or undefined.
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function run(fn) {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e instanceof Error ? e : new Error(String(e)));
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, run, setError };
}

/*
 * A login form in a card: children (a heading, a note) first, then the
 * error of the last try, the login and password fields and the button.
 * labels: {login, password, enter}; onLogin({login, password}) → a promise
 * whose rejection is shown; inputRef: the login field's ref (to focus it).
 */
export function LoginForm({ labels, onLogin, inputRef, children }) {
  const [form, setForm] = useState({ login: '', password: '' });
  const action = useAction();
  function submit(ev) {
    ev.preventDefault();
    action.run(() => onLogin(form));
  }
  return (
    <form class="card" onSubmit={submit}>
      {children}
      <Alert kind="error">{action.error && action.error.message}</Alert>
      <Field label={labels.login} name="login" autocomplete="username" required inputRef={inputRef}
        value={form.login} onInput={(e) => setForm({ ...form, login: e.currentTarget.value })} />
      <Field label={labels.password} name="password" type="password" autocomplete="current-password" required
        value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
      <Button type="submit" busy={action.busy}>{labels.enter}</Button>
    </form>
  );
}
