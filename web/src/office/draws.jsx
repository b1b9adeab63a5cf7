// draws.jsx: the back office's prize draws (#/draws, draw.manage; docs/api.md
// "Prize draws", docs/marketing.md): the list (GET /v1/admin/draws), a new
// draw (POST /v1/admin/draws: its commitment shown at once), closing one
// after its period (POST /v1/admin/draws/{id}/close), its results (winners,
// participants) from the public answer (GET /v1/draws/{id}), a link to the
// public page and the JSON to download (what kopilka draw verify checks).
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { useJsonUrl } from '../lib/draw.js';
import { dateTime, makeT, number } from '../lib/i18n.js';
import { Alert, Button, Field } from '../lib/ui.jsx';
import { ErrorAlert, LoadState, Panel, ScrollTable, useAction, useApiLoad } from './people.jsx';
import { strings } from './draws.strings.js';

const t = makeT(strings);

/* "Winter tyres: 1" lines as [{name, count}]; a bad line throws its number. */
export function parsePrizes(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((line, i) => {
    const m = line.match(/^(.*\S)\s*:\s*(\d+)$/);
    if (!m) throw new Error(t('prizes_bad', { n: i + 1 }));
    return { name: m[1], count: Number(m[2]) };
  });
}

/* A datetime-local value as RFC 3339 in the browser's zone. */
function instant(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString().replace(/\.000Z$/, 'Z');
}

function Create({ onExpired, created }) {
  const [f, setF] = useState({ name: '', from: '', to: '', kind: 'spend', per: '1000', store: '', tier: '', prizes: '' });
  const act = useAction(onExpired);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  async function submit(ev) {
    ev.preventDefault();
    const d = await act.run(() => {
      const rule = { kind: f.kind };
      if (f.kind === 'spend') rule.per_minor = Math.round(Number(f.per) * 100);
      if (f.store.trim()) rule.store = f.store.trim();
      if (f.tier.trim()) rule.tier = f.tier.trim();
      return api('POST', '/v1/admin/draws', {
        name: f.name.trim(), from: instant(f.from), to: instant(f.to), rule, prizes: parsePrizes(f.prizes),
      });
    });
    if (d) created(d);
  }
  const e = act.fields;
  return (
    <Panel title={t('create')}>
      <form onSubmit={submit}>
        <Field label={t('name')} name="name" value={f.name} required error={e.name} onInput={set('name')} />
        <Field label={t('from')} name="from" type="datetime-local" value={f.from} required error={e.from} onInput={set('from')} />
        <Field label={t('to')} name="to" type="datetime-local" value={f.to} required error={e.to} onInput={set('to')} />
        <Field label={t('kind')} name="kind" kind="select" value={f.kind} error={e['rule.kind']} onChange={set('kind')}>
          <option value="spend">{t('kind_spend')}</option>
          <option value="visit">{t('kind_visit')}</option>
        </Field>
        {f.kind === 'spend' && (
          <Field label={t('per_rub')} name="per" type="number" min="0.01" step="0.01" value={f.per} required
            hint={t('per_rub_hint')} error={e['rule.per_minor']} onInput={set('per')} />
        )}
        <Field label={t('store')} name="store" value={f.store} error={e['rule.store']} onInput={set('store')} />
        <Field label={t('tier')} name="tier" value={f.tier} error={e['rule.tier']} onInput={set('tier')} />
        <Field label={t('prizes')} name="prizes" kind="textarea" rows="3" value={f.prizes} required hint={t('prizes_hint')}
          error={e.prizes || Object.entries(e).filter(([k]) => k.startsWith('prizes[')).map(([, v]) => v)[0]}
          onInput={set('prizes')} />
        <Button type="submit" busy={act.busy}>{t('create')}</Button>
      </form>
      <ErrorAlert error={act.error} shown={['name', 'from', 'to', 'rule.kind', 'rule.per_minor', 'rule.store', 'rule.tier', 'prizes']} />
    </Panel>
  );
}

function Results({ id, onExpired }) {
  const load = useApiLoad(() => api('GET', `/v1/draws/${id}`), [id], onExpired);
  const url = useJsonUrl(load.data);
  if (!load.data) return <LoadState load={load} />;
  const d = load.data;
  return (
    <Panel title={t('results_of', { id })}>
      <p>
        <a href={`/#/draw/${id}`} target="_blank" rel="noopener">{t('public')}</a>
        {url && <> · <a href={url} download={`draw-${id}.json`}>{t('export')}</a></>}
      </p>
      {d.state === 'closed' && (
        <>
          <p>{t('participants', { n: number(d.entries.length), total: number(d.total_entries) })}</p>
          {d.winners.length === 0 ? <p>{t('no_winners')}</p> : (
            <ScrollTable label={t('winners')} rows={d.winners} rowKey={(w) => w.slot} columns={[
              { key: 'slot', label: t('slot'), num: true, render: (w) => w.slot + 1 },
              { key: 'prize', label: t('prize') },
              { key: 'id', label: t('winner'), render: (w) => <code>{w.id}</code> },
            ]} />
          )}
        </>
      )}
    </Panel>
  );
}

export function Draws({ onExpired }) {
  const list = useApiLoad(() => api('GET', '/v1/admin/draws'), [], onExpired);
  const act = useAction(onExpired);
  const [asking, setAsking] = useState(null);
  const [shown, setShown] = useState(null);
  const [note, setNote] = useState(null);
  async function close(d) {
    setAsking(null);
    const done = await act.run(() => api('POST', `/v1/admin/draws/${d.id}/close`));
    if (done) {
      setNote(t('closed_done', { id: d.id }));
      setShown(d.id);
      list.reload();
    }
  }
  return (
    <>
      <h1>{t('title')}</h1>
      <p class="muted">{t('about')}</p>
      <Create onExpired={onExpired} created={(d) => { setNote(t('created', { id: d.id, commitment: d.commitment })); list.reload(); }} />
      {note && <Alert kind="ok">{note}</Alert>}
      <Panel title={t('list')}>
        <ErrorAlert error={act.error} />
        {asking && (
          <div class="alert alert-info" role="alertdialog" aria-labelledby="d-ask">
            <p id="d-ask">{t('confirm', { id: asking.id, name: asking.name })}</p>
            <div class="actions">
              <Button onClick={() => close(asking)}>{t('yes')}</Button>
              <Button kind="secondary" onClick={() => setAsking(null)}>{t('no')}</Button>
            </div>
          </div>
        )}
        {list.data ? (
          list.data.draws.length === 0 ? <p>{t('none')}</p> : (
            <ScrollTable wide label={t('list')} rows={list.data.draws} rowKey={(d) => d.id} columns={[
              { key: 'id', label: t('id'), num: true },
              { key: 'name', label: t('name') },
              { key: 'state', label: t('state'), render: (d) => <span class={'badge' + (d.state === 'closed' ? ' badge-ok' : '')}>{t('state_' + d.state)}</span> },
              { key: 'period', label: t('period'), render: (d) => `${dateTime(d.from)} – ${dateTime(d.to)}` },
              { key: 'commitment', label: t('commitment'), render: (d) => <code title={d.commitment}>{d.commitment.slice(0, 16)}…</code> },
              {
                key: 'do', label: t('actions'), render: (d) => (
                  <div class="actions">
                    {d.state === 'open' && (
                      <Button kind="secondary" busy={act.busy} aria-label={t('close_of', { id: d.id })} onClick={() => setAsking(d)}>{t('close')}</Button>
                    )}
                    <Button kind="secondary" aria-label={t('results_of', { id: d.id })} onClick={() => setShown(d.id)}>{t('results')}</Button>
                  </div>
                ),
              },
            ]} />
          )
        ) : (
          <LoadState load={list} />
        )}
      </Panel>
      {shown && <Results id={shown} key={shown + ':' + (note || '')} onExpired={onExpired} />}
    </>
  );
}
