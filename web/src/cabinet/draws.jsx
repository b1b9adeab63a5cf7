// draws.jsx: prize draws in the cabinet (docs/marketing.md "Prize draws"):
// the public page of a draw (#/draw/{id}, GET /v1/draws/{id}, no login):
// its rule, prizes and commitment, and once drawn its participants, seed
// and winners, verified again in the browser (lib/draw.js); and the
// customer's own draws (#/draws, GET /v1/me/draws): their chances and
// prize.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { canVerify, useJsonUrl, verifyDraw } from '../lib/draw.js';
import { date, dateTime, makeT, money, number } from '../lib/i18n.js';
import { Alert, Button, Table, useLoad } from '../lib/ui.jsx';
import { strings } from './draws.strings.js';

const td = makeT(strings);

function RuleText({ d }) {
  return (
    <>
      <p>{td('period', { from: dateTime(d.from), to: dateTime(d.to) })}</p>
      <p>{d.rule.kind === 'spend' ? td('rule_spend', { m: money(d.rule.per_minor) }) : td('rule_visit')}</p>
      {d.rule.store && <p>{td('rule_store', { store: d.rule.store })}</p>}
      {d.rule.tier && <p>{td('rule_tier', { tier: d.rule.tier })}</p>}
    </>
  );
}

/* The check of a closed draw in this browser. */
function Verification({ d }) {
  const [state, setState] = useState(null);
  useEffect(() => {
    if (!canVerify()) return;
    let live = true;
    verifyDraw(d).then((r) => live && setState(r), (e) => live && setState({ ok: false, problems: [{ field: '', text: String(e) }] }));
    return () => { live = false; };
  }, [d]);
  if (!canVerify()) return <Alert kind="info">{td('cannot_verify')}</Alert>;
  if (!state) return <p class="muted" role="status">{td('verifying')}</p>;
  if (state.ok) return <Alert kind="ok">{td('verified')}</Alert>;
  return <Alert kind="error">{td('not_verified', { what: state.problems.map((p) => `${p.field}: ${p.text}`).join('; ') })}</Alert>;
}

export function PublicDraw({ id }) {
  const load = useLoad(() => api('GET', '/v1/draws/' + encodeURIComponent(id)), [id]);
  const url = useJsonUrl(load.data);
  if (load.error)
    return (
      <>
        <h1>{td('mine_title')}</h1>
        <Alert kind="error">{load.error.status === 404 ? td('not_found') : td('load_failed', { why: load.error.message })}</Alert>
      </>
    );
  if (!load.data) return <p class="muted">…</p>;
  const d = load.data;
  return (
    <>
      <h1>{td('title', { name: d.name })}</h1>
      <section class="card">
        <RuleText d={d} />
        <p><strong>{d.state === 'closed' ? td('closed', { at: dateTime(d.closed_at) }) : td('open')}</strong></p>
        <h2>{td('prizes')}</h2>
        <ul>{d.prizes.map((p, i) => <li key={i}>{td('prize_n', { name: p.name, n: p.count })}</li>)}</ul>
      </section>
      <section class="card">
        <h2>{td('commitment')}</h2>
        <p><code class="draw-hex" data-testid="commitment">{d.commitment}</code></p>
        <p class="muted">{td('commitment_note')}</p>
      </section>
      {d.state === 'closed' && (
        <>
          <Verification d={d} />
          <section class="card">
            <h2>{td('winners')}</h2>
            {d.winners.length === 0 ? <p>{td('no_winners')}</p> : (
              <Table rowKey={(w) => w.slot} rows={d.winners} columns={[
                { key: 'slot', label: td('slot'), num: true, render: (w) => w.slot + 1 },
                { key: 'prize', label: td('prize') },
                { key: 'id', label: td('winner'), render: (w) => <code>{w.id}</code> },
              ]} />
            )}
            <h2>{td('seed')}</h2>
            <p><code class="draw-hex" data-testid="seed">{d.seed}</code></p>
          </section>
          <section class="card">
            <h2>{td('entries', { n: number(d.entries.length), total: number(d.total_entries) })}</h2>
            <Table rowKey={(e) => e.id} rows={d.entries} columns={[
              { key: 'id', label: td('id'), render: (e) => <code>{e.id}</code> },
              { key: 'count', label: td('count'), num: true },
            ]} />
          </section>
        </>
      )}
      <section class="card">
        <h2>{td('how')}</h2>
        <p>{td('how_text')}</p>
        {url && <p><a href={url} download={`draw-${d.id}.json`}>{td('download')}</a></p>}
      </section>
    </>
  );
}

/* The customer's own draws (a view of the cabinet's menu). */
export function MyDraws() {
  const load = useLoad(() => api('GET', '/v1/me/draws'), []);
  return (
    <>
      <h1>{td('mine_title')}</h1>
      {load.error && <Alert kind="error">{td('load_failed', { why: load.error.message })}</Alert>}
      {load.data && load.data.draws.length === 0 && <p>{td('none')}</p>}
      {load.data && load.data.draws.map((d) => (
        <section class="card" key={d.id}>
          <h2>{d.name}</h2>
          <RuleText d={d} />
          <p>{d.state === 'open' ? td('me_open') : !d.me ? td('me_none') : (
            <>
              {td('me_entries', { id: d.me.id, n: number(d.me.entries) })}{' '}
              <strong>{d.me.prize ? td('me_won', { prize: d.me.prize }) : td('me_lost')}</strong>
            </>
          )}</p>
          <p><a href={`#/draw/${d.id}`}>{td('details')}</a></p>
        </section>
      ))}
      {!load.data && !load.error && <p class="muted">…</p>}
      {load.error && <Button onClick={load.reload}>↻</Button>}
    </>
  );
}
