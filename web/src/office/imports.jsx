// imports.jsx: the back office's CSV import (#/imports): the kind of file
// (cards, customers, opening balances) and the file; a dry run first
// (POST /v1/admin/imports?dry_run=1: every row checked, nothing written)
// showing each bad row's line, field and message, then the import itself,
// with the figures of each (rows, new, updated, unchanged).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { makeT, useLang, number } from '../lib/i18n.js';
import { Alert, Button, Field, Table } from '../lib/ui.jsx';
import { useAction } from '../lib/action.js';
import '../lib/data.css';
import { strings } from './imports.strings.js';

const t = makeT(strings);
const KINDS = ['cards', 'customers', 'balances'];
const MAX_BYTES = 32 * 1024 * 1024;

const fileKey = (kind, f) => (f ? [kind, f.name, f.size, f.lastModified].join('|') : '');
const size = (bytes) => `${number(bytes / 1024, 1)} KiB`;

/* Seconds since `since` (null: not running), ticking once a second. */
function useElapsed(since) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!since) return undefined;
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [since]);
  return since ? Math.max(0, Math.round((now - since) / 1000)) : 0;
}

function Figures({ r }) {
  const items = r.dry_run
    ? [['rows', r.rows], ['wouldInsert', r.inserted], ['wouldUpdate', r.updated], ['wouldSkip', r.skipped]]
    : [['rows', r.rows], ['inserted', r.inserted], ['updated', r.updated], ['skipped', r.skipped]];
  return (
    <div class="grid">
      {items.map(([k, v]) => (
        <div class="card" key={k}>
          <div class="figure-label">{t(k)}</div>
          <div class="figure">{number(v)}</div>
        </div>
      ))}
    </div>
  );
}

export function Imports({ onExpired }) {
  useLang();
  const [kind, setKind] = useState('cards');
  const [file, setFile] = useState(null);
  const [fileError, setFileError] = useState(null);
  const [checked, setChecked] = useState('');
  const [result, setResult] = useState(null);
  const [running, setRunning] = useState(null); /* {phase, since} */
  const act = useAction(onExpired);
  const elapsed = useElapsed(running && running.since);
  const resultRef = useRef(null);
  useEffect(() => {
    if ((result || act.error) && resultRef.current) resultRef.current.focus();
  }, [result, act.error]);

  async function send(dry) {
    setResult(null);
    if (!file) return setFileError(t('noFile'));
    if (file.size > MAX_BYTES) return setFileError(t('tooBig'));
    setFileError(null);
    setRunning({ phase: dry ? 'checking' : 'importing', since: Date.now() });
    const text = await file.text();
    const r = await act.run(() =>
      api('POST', `/v1/admin/imports?kind=${kind}${dry ? '&dry_run=1' : ''}`, text, {
        contentType: 'text/csv; charset=utf-8',
        timeoutMs: 30 * 60 * 1000,
      }),
    );
    setRunning(null);
    if (r) {
      setResult(r);
      setChecked(dry ? fileKey(kind, file) : '');
    } else {
      setChecked('');
    }
  }

  const bad = act.error && act.error.body && Array.isArray(act.error.body.errors) ? act.error.body : null;
  const ready = checked && checked === fileKey(kind, file);
  const byField = act.error ? act.error.byField() : {};
  return (
    <>
      <h1>{t('title')}</h1>
      <form class="card" noValidate onSubmit={(e) => { e.preventDefault(); send(true); }}>
        <Field label={t('kind')} name="kind" kind="select" value={kind} hint={t('hint_' + kind)} error={byField.kind}
          onChange={(e) => { setKind(e.currentTarget.value); setResult(null); act.setError(null); }}>
          {KINDS.map((k) => (
            <option value={k} key={k}>{t(k)}</option>
          ))}
        </Field>
        <Field label={t('file')} name="file" type="file" accept=".csv,text/csv" hint={t('fileHint')}
          error={fileError || (!bad && byField.body) || undefined}
          onChange={(e) => { setFile(e.currentTarget.files[0] || null); setResult(null); act.setError(null); }} />
        <div class="actions">
          <Button type="submit" kind={ready ? 'secondary' : 'primary'} busy={act.busy}>{t('dry')}</Button>
          <Button type="button" busy={act.busy} disabled={!ready} onClick={() => send(false)}>{t('run')}</Button>
          {!ready && file && !act.busy && <span class="hint">{t('again')}</span>}
        </div>
        {running && (
          <div class="progress" role="status">
            <progress aria-label={t(running.phase, { name: file.name, size: size(file.size) })} />
            <span>
              {t(running.phase, { name: file.name, size: size(file.size) })} {t('elapsed', { s: elapsed })}
            </span>
          </div>
        )}
      </form>
      <div ref={resultRef} tabIndex={-1}>
        {bad ? (
          <>
            <Alert kind="error">{t('bad', { n: bad.errors.length + (bad.errors_more || 0) })}</Alert>
            <Table
              caption={t('errors')}
              rows={bad.errors}
              columns={[
                { key: 'line', label: t('line'), num: true },
                { key: 'field', label: t('field'), render: (x) => <code>{x.field || '—'}</code> },
                { key: 'message', label: t('message') },
              ]}
            />
            {bad.errors_more > 0 && <p class="muted">{t('more', { n: number(bad.errors_more) })}</p>}
          </>
        ) : (
          <Alert kind="error">{act.error && !byField.kind && act.error.message}</Alert>
        )}
        {result && (
          <>
            <Alert kind="ok">{result.dry_run ? t('dryOk') : t('done')}</Alert>
            <h2>{result.dry_run ? t('resultDry') : t('resultRun')}</h2>
            <Figures r={result} />
          </>
        )}
      </div>
    </>
  );
}
