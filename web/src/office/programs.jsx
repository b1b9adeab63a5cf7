// programs.jsx: the back office's program versions (#/programs): the
// versions with their states, a new version checked field by field (each
// JSON path with its message) and compared with the running one (rules by
// id), loaded at once or from a date, a scheduled version cancelled, and a
// sandbox quote (the till's quote with its explain list, nothing written).
// #/programs/V shows one version: its file and its changes.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, useLang, dateTime, money, points } from '../lib/i18n.js';
import { Alert, Button, Check, Field, Table, useLoad } from '../lib/ui.jsx';
import { expiring, localToRfc3339, useAction } from '../lib/action.js';
import '../lib/data.css';
import { strings } from './programs.strings.js';

const t = makeT(strings);
const BADGE = { running: 'badge-ok', scheduled: 'badge-warn', cancelled: 'badge-danger', past: '' };
const OP_BADGE = { added: 'badge-ok', removed: 'badge-danger', changed: 'badge-warn' };

function StateBadge({ state }) {
  return <span class={'badge ' + (BADGE[state] || '')}>{t(state)}</span>;
}

/* The editor's text as a program object, or {error} saying why not (also
 * the program model's, simulate.jsx). */
export function parseProgram(text) {
  if (!text.trim()) return { error: t('empty') };
  let program;
  try {
    program = JSON.parse(text);
  } catch (e) {
    return { error: t('notJson', { message: e.message }) };
  }
  if (!program || typeof program !== 'object' || Array.isArray(program)) return { error: t('notObject') };
  return { program };
}

/* Every field error of an answer: [{field, message}]. */
function fieldErrors(err) {
  if (!err) return [];
  if (err.fields.length) return err.fields;
  return err.field ? [{ field: err.field, message: err.message }] : [];
}

const json = (v) => (v === undefined ? '—' : JSON.stringify(v));

/* A diff's changes; total: how many there are (an answer lists 1000). */
function Changes({ changes, total }) {
  if (!changes) return null;
  if (changes.length === 0) return <p class="muted">{t('noChanges')}</p>;
  return (
    <>
      {total > changes.length && <p class="muted">{t('moreChanges', { shown: changes.length, total })}</p>}
      <Table
        rows={changes}
        columns={[
          { key: 'path', label: t('path'), render: (c) => <code>{c.path}</code> },
          { key: 'op', label: t('op'), render: (c) => <span class={'badge ' + (OP_BADGE[c.op] || '')}>{t(c.op)}</span> },
          { key: 'from', label: t('before'), render: (c) => <code>{json(c.from)}</code> },
          { key: 'to', label: t('after'), render: (c) => <code>{json(c.to)}</code> },
        ]}
      />
    </>
  );
}

/* "Cancel" for a scheduled version, asked twice; focus moves to the
 * question and back. label: the button's visible words (default "Cancel
 * version V"). */
function CancelVersion({ v, label, onExpired, onDone }) {
  const [asking, setAsking] = useState(false);
  const act = useAction(onExpired);
  const box = useRef(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const button = box.current && box.current.querySelector('button');
    if (button) button.focus();
  }, [asking]);
  async function cancel() {
    const r = await act.run(() => api('POST', `/v1/admin/programs/${v}/cancel`, {}));
    setAsking(false);
    if (r) onDone(v);
  }
  return (
    <span class="actions" ref={box}>
      {asking ? (
        <>
          <Button kind="danger" busy={act.busy} onClick={cancel}>{t('confirmCancel', { v })}</Button>
          <Button kind="secondary" onClick={() => setAsking(false)}>{t('keep')}</Button>
        </>
      ) : (
        <Button kind="secondary" aria-label={label ? t('cancelV', { v }) : undefined} onClick={() => setAsking(true)}>
          {label || t('cancelV', { v })}
        </Button>
      )}
      {act.error && <span class="error-text" role="alert">{act.error.message}</span>}
    </span>
  );
}

function Versions({ list, may, onExpired, onChanged }) {
  const [done, setDone] = useState(null);
  const d = list.data;
  return (
    <section aria-labelledby="versions-h">
      <h2 id="versions-h">{t('versions')}</h2>
      <Alert kind="error">{list.error && list.error.message}</Alert>
      <Alert kind="ok">{done}</Alert>
      {list.loading && !d && <p class="muted">{t('loading')}</p>}
      {d && (
        <>
          <p>{t('runningNow', { v: d.running })}</p>
          <Table
            rows={d.versions}
            rowKey={(r) => r.version}
            empty={t('noVersions')}
            columns={[
              { key: 'version', label: t('version'), num: true,
                render: (r) => <a href={`#/programs/${r.version}`} aria-label={t('open', { v: r.version })}>{r.version}</a> },
              { key: 'name', label: t('name') },
              { key: 'loaded_at', label: t('loadedAt'), render: (r) => dateTime(r.loaded_at) },
              { key: 'loaded_by', label: t('loadedBy') },
              { key: 'activates_at', label: t('activatesAt'), render: (r) => (r.activates_at ? dateTime(r.activates_at) : t('atOnce')) },
              { key: 'state', label: t('state'), render: (r) => <StateBadge state={r.state} /> },
              { key: 'actions', label: t('actions'),
                render: (r) =>
                  r.state === 'scheduled' && may ? (
                    <CancelVersion v={r.version} label={t('cancel')} onExpired={onExpired}
                      onDone={(v) => { setDone(t('cancelled_ok', { v })); onChanged(); }} />
                  ) : null },
            ]}
          />
        </>
      )}
    </section>
  );
}

/* The new version: a file or pasted text, checked, compared, loaded. */
function Editor({ text, setText, running, may, onExpired, onLoaded }) {
  const [form, setForm] = useState({ name: '', when: 'now', at: '' });
  const [local, setLocal] = useState({});
  const [checked, setChecked] = useState(null);
  const [loaded, setLoaded] = useState(null);
  const act = useAction(onExpired);
  const resultRef = useRef(null);
  const errs = fieldErrors(act.error);
  const byField = act.error ? act.error.byField() : {};
  const programErrs = errs.filter((f) => f.field !== 'name' && f.field !== 'activates_at');
  useEffect(() => {
    if ((checked || loaded || programErrs.length) && resultRef.current) resultRef.current.focus();
  }, [checked, loaded, act.error]);

  function program() {
    const p = parseProgram(text);
    setLocal(p.error ? { text: p.error } : {});
    return p.program;
  }
  async function check() {
    setChecked(null);
    setLoaded(null);
    const p = program();
    if (!p) return;
    const r = await act.run(() => api('POST', '/v1/admin/programs/validate', { program: p }));
    if (r) setChecked({ changes: r.changes || [], against: r.against, total: r.changes_total });
  }
  async function load(ev) {
    ev.preventDefault();
    setChecked(null);
    setLoaded(null);
    const p = program();
    if (!p) return;
    const body = { program: p };
    if (form.name.trim()) body.name = form.name.trim();
    if (form.when === 'later') {
      const at = localToRfc3339(form.at);
      if (!at) return setLocal({ at: t('atMissing') });
      body.activates_at = at;
    }
    const r = await act.run(() => api('POST', '/v1/admin/programs', body));
    if (r) {
      setLoaded(r.state === 'scheduled' ? t('scheduledOk', { v: r.version, at: dateTime(r.activates_at) }) : t('loaded', { v: r.version }));
      onLoaded();
    }
  }
  async function fromRunning() {
    const r = await act.run(() => api('GET', `/v1/admin/programs/${running}`));
    if (r) setText(JSON.stringify(r.program, null, 2));
  }
  async function pick(ev) {
    const f = ev.currentTarget.files && ev.currentTarget.files[0];
    if (f) setText(await f.text());
  }
  const textError = local.text || (programErrs.length ? t('invalidShort', { n: programErrs.length }) : undefined);
  return (
    <section aria-labelledby="upload-h">
      <h2 id="upload-h">{t('upload')}</h2>
      <form class="card" onSubmit={load} noValidate>
        <Field label={t('file')} name="file" type="file" accept=".json,application/json" hint={t('fileHint')} onChange={pick} />
        {running ? (
          <div class="actions">
            <Button kind="secondary" type="button" onClick={fromRunning}>{t('fromRunning')}</Button>
          </div>
        ) : null}
        <Field label={t('text')} name="program" kind="textarea" rows={14} spellcheck={false} value={text}
          hint={t('textHint')} error={textError} onInput={(e) => setText(e.currentTarget.value)} />
        {may && (
          <>
            <Field label={t('vname')} name="name" value={form.name} hint={t('vnameHint')} error={byField.name}
              onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
            <fieldset>
              <legend>{t('when')}</legend>
              <div class="choice">
                <label>
                  <input type="radio" name="when" value="now" checked={form.when === 'now'}
                    onChange={() => setForm({ ...form, when: 'now' })} />
                  {t('now')}
                </label>
                <label>
                  <input type="radio" name="when" value="later" checked={form.when === 'later'}
                    onChange={() => setForm({ ...form, when: 'later' })} />
                  {t('later')}
                </label>
              </div>
              {form.when === 'later' && (
                <Field label={t('at')} name="activates_at" type="datetime-local" value={form.at} hint={t('atHint')}
                  error={local.at || byField.activates_at}
                  onInput={(e) => setForm({ ...form, at: e.currentTarget.value })} />
              )}
            </fieldset>
          </>
        )}
        <div class="actions">
          <Button kind={may ? 'secondary' : 'primary'} type="button" busy={act.busy} onClick={check}>{t('check')}</Button>
          {may && <Button type="submit" busy={act.busy}>{form.when === 'later' ? t('schedule') : t('load')}</Button>}
        </div>
      </form>
      <div ref={resultRef} tabIndex={-1}>
        {programErrs.length > 0 ? (
          <>
            <Alert kind="error">{t('invalid', { n: programErrs.length })}</Alert>
            <Table
              caption={t('errorsCaption')}
              rows={programErrs}
              columns={[
                { key: 'field', label: t('errField'), render: (f) => <code>{f.field}</code> },
                { key: 'message', label: t('errMessage') },
              ]}
            />
          </>
        ) : (
          <Alert kind="error">{act.error && !byField.name && !byField.activates_at && act.error.message}</Alert>
        )}
        <Alert kind="ok">{loaded || (checked && t('valid'))}</Alert>
        {checked && (
          <>
            <h3>{checked.against ? t('diffAgainst', { v: checked.against }) : t('diff')}</h3>
            <Changes changes={checked.changes} total={checked.total} />
          </>
        )}
      </div>
    </section>
  );
}

const blankLine = () => ({ sku: '', category: '', amount: '', qty: '1', promo: false });

/* "1 250,50" → 125050 minor units; null when it is not such a number. */
function toMinor(text) {
  const s = String(text).replace(/\s/g, '').replace(',', '.');
  if (!/^\d+(\.\d{1,2})?$/.test(s)) return null;
  const [whole, frac = ''] = s.split('.');
  return Number(whole) * 100 + Number((frac + '00').slice(0, 2));
}

function Sandbox({ text, onExpired }) {
  const [form, setForm] = useState({ source: 'running', card: '', balance: '', burn: '0' });
  const [lines, setLines] = useState([{ ...blankLine(), sku: 'LABOR-1', category: 'labor', amount: '5000' }]);
  const [local, setLocal] = useState({});
  const [quote, setQuote] = useState(null);
  const act = useAction(onExpired);
  const resultRef = useRef(null);
  const errs = { ...(act.error ? act.error.byField() : {}), ...local };
  useEffect(() => {
    if (quote && resultRef.current) resultRef.current.focus();
  }, [quote]);
  const setLine = (i, k, v) => setLines(lines.map((l, n) => (n === i ? { ...l, [k]: v } : l)));

  async function run(ev) {
    ev.preventDefault();
    setQuote(null);
    const bad = {};
    const body = { burn: Number(form.burn) || 0, lines: [] };
    lines.forEach((l, i) => {
      const amount = toMinor(l.amount);
      if (amount === null) bad[`lines[${i}].amount`] = t('badAmount');
      const line = { sku: l.sku.trim(), amount, qty: Number(l.qty) || 1, promo: l.promo };
      if (l.category.trim()) line.category = l.category.trim();
      body.lines.push(line);
    });
    if (form.source === 'editor') {
      const p = parseProgram(text);
      if (p.error) bad.program = p.error;
      else body.program = p.program;
    }
    if (form.card.trim()) body.card = form.card.trim();
    else if (form.balance.trim()) body.balance = Number(form.balance);
    setLocal(bad);
    if (Object.keys(bad).length) return;
    const r = await act.run(() => api('POST', '/v1/admin/programs/sandbox', body));
    if (r) setQuote(r);
  }
  const otherErrors = act.error && !Object.keys(act.error.byField()).some((k) => k === 'card' || k === 'balance' || k === 'burn' || k.startsWith('lines['));
  return (
    <section aria-labelledby="sandbox-h">
      <h2 id="sandbox-h">{t('sandbox')}</h2>
      <form class="card" onSubmit={run} noValidate>
        <p class="muted">{t('sandboxHint')}</p>
        <Field label={t('sandboxProgram')} name="source" kind="select" value={form.source} error={errs.program}
          onChange={(e) => setForm({ ...form, source: e.currentTarget.value })}>
          <option value="running">{t('useRunning')}</option>
          <option value="editor">{t('useEditor')}</option>
        </Field>
        <div class="row row-top">
          <Field label={t('card')} name="card" value={form.card} hint={t('cardHint')} error={errs.card}
            onInput={(e) => setForm({ ...form, card: e.currentTarget.value })} />
          <Field label={t('balance')} name="balance" type="number" min="0" value={form.balance} hint={t('balanceHint')}
            disabled={!!form.card.trim()} error={errs.balance} onInput={(e) => setForm({ ...form, balance: e.currentTarget.value })} />
          <Field label={t('burn')} name="burn" type="number" min="0" value={form.burn} hint={t('burnHint')} error={errs.burn}
            onInput={(e) => setForm({ ...form, burn: e.currentTarget.value })} />
        </div>
        <fieldset>
          <legend>{t('basket')}</legend>
          {lines.map((l, i) => (
            <div class="lines-row" role="group" aria-label={t('line', { n: i + 1 })} key={i}>
              <Field label={t('sku')} value={l.sku} error={errs[`lines[${i}].sku`]} onInput={(e) => setLine(i, 'sku', e.currentTarget.value)} />
              <Field label={t('category')} value={l.category} error={errs[`lines[${i}].category`]}
                onInput={(e) => setLine(i, 'category', e.currentTarget.value)} />
              <Field label={t('amount')} value={l.amount} inputMode="decimal" error={errs[`lines[${i}].amount`]}
                onInput={(e) => setLine(i, 'amount', e.currentTarget.value)} />
              <Field label={t('qty')} type="number" min="1" value={l.qty} error={errs[`lines[${i}].qty`]}
                onInput={(e) => setLine(i, 'qty', e.currentTarget.value)} />
              <Check label={t('promo')} checked={l.promo} onChange={(e) => setLine(i, 'promo', e.currentTarget.checked)} />
              <Button kind="link" type="button" disabled={lines.length === 1} aria-label={t('removeLine', { n: i + 1 })}
                onClick={() => setLines(lines.filter((_, n) => n !== i))}>
                ✕
              </Button>
            </div>
          ))}
          <div class="actions">
            <Button kind="secondary" type="button" disabled={lines.length >= 200} onClick={() => setLines([...lines, blankLine()])}>
              {t('addLine')}
            </Button>
          </div>
        </fieldset>
        <Button type="submit" busy={act.busy}>{t('quote')}</Button>
      </form>
      <Alert kind="error">{otherErrors ? act.error.message : null}</Alert>
      {quote && (
        <div ref={resultRef} tabIndex={-1} class="card">
          <h3>{t('result')}</h3>
          <div class="grid figures">
            {[
              ['total', money(quote.amount)],
              ['discount', money(quote.discount)],
              ['burned', points(quote.burned)],
              ['paid', money(quote.paid)],
              ['earned', points(quote.earned)],
              ['balanceAfter', points(quote.balance)],
            ].map(([k, v]) => (
              <div key={k}>
                <div class="figure-label">{t(k)}</div>
                <div class="figure">{v}</div>
              </div>
            ))}
          </div>
          <p>{quote.burn_limited_by ? t('limitedBy', { why: quote.burn_limited_by }) : t('notLimited')}</p>
          <Table
            caption={t('explain')}
            rows={quote.explain || []}
            columns={[
              { key: 'rule', label: t('rule'), render: (x) => <code>{x.rule}</code> },
              { key: 'kind', label: t('kind') },
              { key: 'base', label: t('base'), num: true, render: (x) => (x.base == null ? '—' : money(x.base)) },
              { key: 'rate', label: t('rate') },
              { key: 'points', label: t('points'), num: true, render: (x) => (x.points == null ? '—' : points(x.points)) },
              { key: 'discount', label: t('discount'), num: true, render: (x) => (x.discount == null ? '—' : money(x.discount)) },
              { key: 'text', label: t('text_') },
            ]}
          />
          {quote.receipt_lines && quote.receipt_lines.length > 0 && (
            <>
              <h4>{t('receipt')}</h4>
              <pre>{quote.receipt_lines.join('\n')}</pre>
            </>
          )}
        </div>
      )}
    </section>
  );
}

/* #/programs/V: one version, its changes against the running one, its file. */
function Version({ v, may, onExpired }) {
  const one = useLoad(expiring(onExpired, () => api('GET', `/v1/admin/programs/${v}`)), [v]);
  const diff = useLoad(
    expiring(onExpired, () =>
      one.data && one.data.state !== 'running'
        ? api('POST', '/v1/admin/programs/diff', { program: one.data.program })
        : Promise.resolve(null),
    ),
    [one.data],
  );
  const d = one.data;
  return (
    <>
      <p><a href="#/programs">← {t('back')}</a></p>
      <h1>{d ? t('versionTitle', { v, name: d.name }) : t('version') + ' ' + v}</h1>
      <Alert kind="error">{(one.error || diff.error) && (one.error || diff.error).message}</Alert>
      {one.loading && !d && <p class="muted">{t('loading')}</p>}
      {d && (
        <>
          <p>
            <StateBadge state={d.state} /> · {t('activatesAt')}: {d.activates_at ? dateTime(d.activates_at) : t('atOnce')}
          </p>
          {may && d.state === 'scheduled' && <CancelVersion v={v} onExpired={onExpired} onDone={() => one.reload()} />}
          <h2>{t('diff')}</h2>
          {d.state === 'running' ? <p class="muted">{t('diffRunning')}</p> : <Changes changes={diff.data && diff.data.changes} total={diff.data && diff.data.changes_total} />}
          <details>
            <summary>{t('programText')}</summary>
            <pre>{JSON.stringify(d.program, null, 2)}</pre>
          </details>
        </>
      )}
    </>
  );
}

export function Programs({ me, route, onExpired }) {
  useLang();
  const [text, setText] = useState('');
  const may = me.permissions.includes('program.manage');
  const list = useLoad(expiring(onExpired, () => api('GET', '/v1/admin/programs')), []);
  const m = route.path.match(/^\/programs\/(\d+)$/);
  if (m) return <Version v={Number(m[1])} may={may} onExpired={onExpired} />;
  return (
    <>
      <h1>{t('title')}</h1>
      <Versions list={list} may={may} onExpired={onExpired} onChanged={list.reload} />
      <Editor text={text} setText={setText} running={list.data && list.data.running} may={may}
        onExpired={onExpired} onLoaded={list.reload} />
      <Sandbox text={text} onExpired={onExpired} />
    </>
  );
}
